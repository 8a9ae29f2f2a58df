"""Linking guardians by the school: admin API, admin page, CLI; a school admin never reaches
another school's pupil."""

from __future__ import annotations

from tests.admin.conftest import admin_sign_in, form_token
from tests.guardians.conftest import link


def test_school_admin_links_lists_and_ends_by_api(client, school_admin, token_of, make_guardian,
                                                  young_child, svc):
    headers = token_of(school_admin)
    adult = make_guardian()
    made = client.post("/api/admin/guardian-links", headers=headers,
                       json={"guardian_id": adult.id, "child_id": young_child.id})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["guardian"]["id"] == adult.id and body["child"]["id"] == young_child.id
    again = client.post("/api/admin/guardian-links", headers=headers,
                        json={"guardian_id": adult.id, "child_id": young_child.id})
    assert again.status_code == 409 and again.get_json()["error"] == "already_linked"
    listed = client.get(f"/api/admin/guardian-links?account_id={adult.id}", headers=headers)
    assert [v["id"] for v in listed.get_json()["links"]] == [body["id"]]
    assert client.delete(f"/api/admin/guardian-links/{body['id']}",
                         headers=headers).status_code == 204
    assert client.delete(f"/api/admin/guardian-links/{body['id']}",
                         headers=headers).status_code == 404


def test_school_admin_cannot_link_across_schools(client, school_admin, token_of, make_guardian,
                                                 make_student, other_school, young_child,
                                                 svc):
    from idp.store.models import Account

    headers = token_of(school_admin)
    adult = make_guardian()
    with svc.db.session() as s:
        pupil = Account(school_id=other_school.id, login_id="far-pupil-" + adult.id[:6],
                        role="student")
        s.add(pupil)
    far = client.post("/api/admin/guardian-links", headers=headers,
                      json={"guardian_id": adult.id, "child_id": pupil.id})
    assert far.status_code == 403
    far_guardian = make_guardian(in_school=other_school)
    assert client.post("/api/admin/guardian-links", headers=headers, json={
        "guardian_id": far_guardian.id, "child_id": young_child.id}).status_code == 403
    # Another school's link is not even visible (404, as unknown).
    other_link = link(svc, far_guardian, young_child.__class__(pupil.id, "", "", ""))
    assert client.delete(f"/api/admin/guardian-links/{other_link}",
                         headers=headers).status_code == 404
    listed = client.get(f"/api/admin/guardian-links?school_code={other_school.code}",
                        headers=headers)
    assert listed.status_code == 403


def test_roles_and_bad_input_are_refused(client, school_admin, token_of, make_guardian,
                                         make_student, young_child):
    headers = token_of(school_admin)
    pupil_b = make_student()
    wrong = client.post("/api/admin/guardian-links", headers=headers,
                        json={"guardian_id": pupil_b.id, "child_id": young_child.id})
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "not_guardian"
    adult, other_adult = make_guardian(), make_guardian()
    wrong = client.post("/api/admin/guardian-links", headers=headers,
                        json={"guardian_id": adult.id, "child_id": other_adult.id})
    assert wrong.get_json()["error"] == "not_child"
    for body in ({}, {"guardian_id": 5, "child_id": "x"}, {"guardian_id": "x" * 40},
                 [1, 2]):
        assert client.post("/api/admin/guardian-links", headers=headers,
                           json=body).status_code == 400
    assert client.post("/api/admin/guardian-links", headers=headers, json={
        "guardian_id": "nope", "child_id": "nope"}).status_code == 404
    for value in ("2040-01-01", "tomorrow", 5):
        assert client.put(f"/api/admin/accounts/{young_child.id}/birth-date", headers=headers,
                          json={"birth_date": value}).status_code == 400
    ok = client.put(f"/api/admin/accounts/{young_child.id}/birth-date", headers=headers,
                    json={"birth_date": "2016-05-05"})
    assert ok.get_json() == {"account_id": young_child.id, "birth_date": "2016-05-05"}


def test_consent_age_is_the_schools(client, school_admin, token_of, school, other_school, svc):
    from idp.store.models import School

    headers = token_of(school_admin)
    for value in (-1, 21, "13", True):
        assert client.put(f"/api/admin/schools/{school.code}/guardian-consent-age",
                          headers=headers, json={"under": value}).status_code == 400
    assert client.put(f"/api/admin/schools/{other_school.code}/guardian-consent-age",
                      headers=headers, json={"under": 15}).status_code == 403
    done = client.put(f"/api/admin/schools/{school.code}/guardian-consent-age",
                      headers=headers, json={"under": 13})
    assert done.get_json()["guardian_consent_age"] == 13
    with svc.db.session() as s:
        assert s.get(School, school.id).guardian_consent_age == 13


def test_admin_page_links_and_unlinks(client, school_admin, make_guardian, young_child, svc):
    from idp.store.models import GuardianLink

    adult = make_guardian()
    admin_sign_in(client, school_admin)
    path = f"/admin/accounts/{young_child.id}/guardians"
    assert client.get(f"/admin/accounts/{young_child.id}").status_code == 200
    assert client.post(path, data={"login_id": adult.login_id}).status_code == 400  # no CSRF
    unknown = client.post(path, data={"csrf_token": form_token(client, path),
                                      "login_id": "nobody"})
    assert unknown.status_code == 400 and 'id="guardian-error"' in unknown.get_data(as_text=True)
    made = client.post(path, data={"csrf_token": form_token(client, path),
                                   "login_id": adult.login_id})
    assert made.status_code == 303
    with svc.db.session() as s:
        row = s.query(GuardianLink).filter_by(guardian_id=adult.id).one()
    assert f'id="link-{row.id}"' in client.get(path).get_data(as_text=True)
    gone = client.post(f"{path}/{row.id}/unlink",
                       data={"csrf_token": form_token(client, path)})
    assert gone.status_code == 303
    with svc.db.session() as s:
        assert s.query(GuardianLink).filter_by(guardian_id=adult.id).count() == 0


def test_cli_links_lists_and_unlinks(app, make_guardian, young_child, school, svc):
    from click.testing import CliRunner

    from idp.cli import Ctx, cli, register_extra_commands

    register_extra_commands()
    ctx = Ctx()
    ctx._app = app
    runner = CliRunner()
    adult = make_guardian()
    args = ["--school", school.code, "--guardian", adult.login_id, "--child",
            young_child.login_id]
    done = runner.invoke(cli, ["guardian", "link", *args], obj=ctx)
    assert done.exit_code == 0, done.output
    again = runner.invoke(cli, ["guardian", "link", *args], obj=ctx)
    assert again.exit_code == 2 and "already linked" in again.output
    listed = runner.invoke(cli, ["guardian", "list", "--school", school.code], obj=ctx)
    assert adult.id in listed.output
    assert runner.invoke(cli, ["guardian", "unlink", *args], obj=ctx).exit_code == 0
    missing = runner.invoke(cli, ["guardian", "link", "--school", school.code, "--guardian",
                                  "nobody", "--child", young_child.login_id], obj=ctx)
    assert missing.exit_code == 2


def test_discovery_advertises_the_guardian_scope(client):
    assert "guardian" in client.get("/.well-known/openid-configuration").get_json()[
        "scopes_supported"]


def test_admin_page_sets_birth_date_and_school_age(client, school_admin, young_child, school,
                                                   other_school, svc):
    from idp.store.models import Account, School

    admin_sign_in(client, school_admin)
    page = f"/admin/accounts/{young_child.id}/guardians"
    bad = client.post(f"/admin/accounts/{young_child.id}/birth-date",
                      data={"csrf_token": form_token(client, page), "birth_date": "2999-01-01"})
    assert bad.status_code == 400 and 'id="guardian-error"' in bad.get_data(as_text=True)
    ok = client.post(f"/admin/accounts/{young_child.id}/birth-date",
                     data={"csrf_token": form_token(client, page), "birth_date": "2015-04-02"})
    assert ok.status_code == 303
    age_page = f"/admin/schools/{school.code}/guardian-age"
    for value in ("x", "-1", "21", "99999"):
        assert client.post(age_page, data={"csrf_token": form_token(client, age_page),
                                           "under": value}).status_code == 400
    assert client.post(age_page, data={"csrf_token": form_token(client, age_page),
                                       "under": "13"}).status_code == 303
    assert client.post(age_page, data={"under": "0"}).status_code == 400  # no CSRF token
    assert client.get(f"/admin/schools/{other_school.code}/guardian-age").status_code == 403
    assert client.get("/admin/schools/nope/guardian-age").status_code == 404
    with svc.db.session() as s:
        assert str(s.get(Account, young_child.id).birth_date) == "2015-04-02"
        assert s.get(School, school.id).guardian_consent_age == 13


def test_a_teacher_or_a_guardian_cannot_link(client, make_account, make_guardian, young_child,
                                             svc):
    from tests.admin.conftest import api_token_for

    teacher = make_account("teacher")
    adult = make_guardian()
    for who in (teacher.id, adult.id):
        headers = {"Authorization": "Bearer " + api_token_for(svc, who)}
        refused = client.post("/api/admin/guardian-links", headers=headers,
                              json={"guardian_id": adult.id, "child_id": young_child.id})
        assert refused.status_code == 403
    admin_sign_in(client, teacher)
    assert client.get(f"/admin/accounts/{young_child.id}/guardians").status_code == 403


def test_the_childs_school_can_end_a_link_to_another_schools_guardian(
        client, school_admin, token_of, make_guardian, make_account, other_school,
        young_child, svc):
    """A platform admin may link a guardian of one school to a pupil of another (a family
    across two schools). The pupil's school sees that link; it must be able to end it too
    (it was a 403: the guardian account is not theirs), since it decides who acts for its
    pupil. The guardian's school still cannot reach the link (the child is not theirs)."""
    far_guardian = make_guardian(in_school=other_school)
    made = client.post("/api/admin/guardian-links", headers=token_of(make_account()),
                       json={"guardian_id": far_guardian.id, "child_id": young_child.id})
    assert made.status_code == 201, made.get_json()
    link_id = made.get_json()["id"]
    guardians_school = make_account("school_admin", in_school=other_school)
    assert client.delete(f"/api/admin/guardian-links/{link_id}",
                         headers=token_of(guardians_school)).status_code == 404
    listed = client.get("/api/admin/guardian-links", headers=token_of(school_admin))
    assert link_id in [v["id"] for v in listed.get_json()["links"]]
    ended = client.delete(f"/api/admin/guardian-links/{link_id}",
                          headers=token_of(school_admin))
    assert ended.status_code == 204, ended.get_json()
    svc.events.flush()
    from sqlalchemy import select

    from idp.store.models import AuditEvent, GuardianLink
    with svc.db.session() as s:
        assert s.get(GuardianLink, link_id) is None
        assert s.scalars(select(AuditEvent).where(
            AuditEvent.event == "guardian.unlinked",
            AuditEvent.account_id == young_child.id)).all()
