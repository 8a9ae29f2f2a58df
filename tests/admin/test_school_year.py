"""The year-end promotion (idp.admin.school_year) and the graduates' lifecycle run
(idp.accounts.lifecycle), from the admin API and the CLI, with the abuse cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.conftest import unique

ROSTER_HEADER = "login_id,grade,class\n"


@pytest.fixture
def year_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("yr"), name="進級小学校", top_grade=6)
        s.add(row)
    return row


@pytest.fixture
def pupils(svc, year_school):
    """login id → account id for pupils in grades 1, 5, 6 and one with no number."""
    from idp.store.models import Account

    made = {}
    with svc.db.session() as s:
        for login, grade, klass in (("ichi", "1", "2"), ("go-a", "5", "1"), ("go-b", "5", "2"),
                                    ("roku", "6", "3"), ("nen", "年長", "")):
            row = Account(school_id=year_school.id, login_id=login, display_name=login,
                          grade=grade, class_name=klass, password_hash="x")
            s.add(row)
            s.flush()
            made[login] = row.id
        s.add(Account(school_id=year_school.id, login_id="sensei", role="teacher", grade="",
                      class_name=""))
    return made


def _state(svc, school_id: str) -> dict[str, tuple]:
    from idp.store.models import Account

    with svc.db.read() as s:
        return {a.login_id: (a.grade, a.class_name, a.status, a.active)
                for a in s.scalars(select(Account).where(Account.school_id == school_id))}


def _preview(client, headers, school, roster: str | None = None):
    return client.post(f"/api/admin/schools/{school.code}/promotion/preview",
                       data=(roster or "").encode(), content_type="text/csv", headers=headers)


def _apply(client, headers, school, token):
    return client.post(f"/api/admin/schools/{school.code}/promotion/apply",
                       json={"preview_token": token}, headers=headers)


def _audit_count(svc, event: str, school_id: str) -> int:
    from idp.store.models import AuditEvent

    with svc.db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == event, AuditEvent.school_id == school_id))


# ----------------------------------------------------------------------------- the API
def test_dry_run_shows_everything_and_changes_nothing(client, svc, year_school, pupils,
                                                      make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=year_school))
    before = _state(svc, year_school.id)
    roster = ROSTER_HEADER + "ichi,2,1\ngo-a,6,1\n"
    response = _preview(client, headers, year_school, roster)
    assert response.status_code == 200, response.get_json()
    plan = response.get_json()
    assert plan["valid"] is True and plan["top_grade"] == 6
    moves = {p["login_id"]: (p["grade_to"], p["class_to"], p["class_from_roster"])
             for p in plan["promote"]}
    assert moves == {"ichi": ("2", "1", True), "go-a": ("6", "1", True),
                     "go-b": ("6", "2", False)}
    assert [g["login_id"] for g in plan["graduate"]] == ["roku"]
    assert [(p["login_id"], p["code"]) for p in plan["skipped"]] == [("nen", "not_a_number")]
    assert _state(svc, year_school.id) == before  # a dry run changes nothing
    assert _audit_count(svc, "school.promoted", year_school.id) == 0


def test_apply_promotes_once_and_graduates_the_top_grade(client, svc, year_school, pupils,
                                                         make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=year_school))
    roster = ROSTER_HEADER + "ichi,2,1\ngo-a,6,1\n"
    token = _preview(client, headers, year_school, roster).get_json()["preview_token"]
    first = _apply(client, headers, year_school, token)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["summary"]["promote"] == 3
    state = _state(svc, year_school.id)
    assert state["ichi"] == ("2", "1", "active", True)
    assert state["go-a"] == ("6", "1", "active", True)
    assert state["go-b"] == ("6", "2", "active", True)  # not in the roster: class kept
    assert state["roku"] == ("6", "3", "graduated", True)
    assert state["nen"] == ("年長", "", "active", True)
    assert state["sensei"][0] == ""  # teachers are not promoted
    # The same preview again (a double click, a retried call): nothing more happens.
    again = _apply(client, headers, year_school, token)
    assert again.status_code == 409 and again.get_json()["error"] == "already_applied"
    assert _state(svc, year_school.id) == state
    assert _audit_count(svc, "school.promoted", year_school.id) == 1
    assert _audit_count(svc, "account.graduated", year_school.id) == 1
    # A new preview now plans the next year (graduates are not promoted again).
    nxt = _preview(client, headers, year_school).get_json()
    assert "roku" not in {g["login_id"] for g in nxt["graduate"]}
    assert {g["login_id"] for g in nxt["graduate"]} == {"go-a", "go-b"}


def test_a_preview_made_stale_by_a_change_is_refused(client, svc, year_school, pupils,
                                                     make_account, token_of):
    from idp.store.models import Account

    headers = token_of(make_account("school_admin", in_school=year_school))
    token = _preview(client, headers, year_school).get_json()["preview_token"]
    with svc.db.session() as s:
        s.get(Account, pupils["ichi"]).grade = "2"
    before = _state(svc, year_school.id)
    response = _apply(client, headers, year_school, token)
    assert response.status_code == 409 and response.get_json()["error"] == "stale_preview"
    assert _state(svc, year_school.id) == before


@pytest.mark.parametrize("roster, code", [
    ("ichi,3,1\n", "grade_mismatch"),
    ("nobody,2,1\n", "unknown_login"),
    ("roku,7,1\n", "graduating"),
    ("ichi,2,1\nICHI,2,2\n", "duplicate"),
])
def test_roster_errors_block_the_apply(client, svc, year_school, pupils, make_account,
                                       token_of, roster, code):
    headers = token_of(make_account("school_admin", in_school=year_school))
    plan = _preview(client, headers, year_school, ROSTER_HEADER + roster).get_json()
    assert plan["valid"] is False and code in {e["code"] for e in plan["errors"]}
    before = _state(svc, year_school.id)
    response = _apply(client, headers, year_school, plan["preview_token"])
    assert response.status_code == 410  # an invalid preview is never kept to apply
    assert _state(svc, year_school.id) == before


def test_mynagate_roster_file_works_and_its_other_school_rows_are_errors(
        client, svc, year_school, other_school, pupils, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=year_school))
    roster = ("学校コード,ログインID,氏名,学年,組,区分\n"
              f"{year_school.code},ichi,ichi,2,4,児童\n"
              f"{other_school.code},go-a,go-a,6,1,児童\n")
    plan = _preview(client, headers, year_school, roster).get_json()
    assert [(e["login_id"], e["code"]) for e in plan["errors"]] == [("go-a", "other_school")]
    assert {p["login_id"]: p["class_to"] for p in plan["promote"]}["ichi"] == "4"


def test_unreadable_roster_is_a_clear_error(client, year_school, pupils, make_account,
                                            token_of):
    headers = token_of(make_account("school_admin", in_school=year_school))
    response = _preview(client, headers, year_school, "name,foo\nx,y\n")
    assert response.status_code == 400 and response.get_json()["error"] == "missing_columns"
    response = client.post(f"/api/admin/schools/{year_school.code}/promotion/apply",
                           data="nope", headers=headers)
    assert response.status_code == 400


def test_a_school_admin_cannot_promote_another_schools_pupils(
        client, svc, year_school, other_school, pupils, make_account, token_of):
    own = token_of(make_account("school_admin", in_school=year_school))
    intruder = token_of(make_account("school_admin", in_school=other_school))
    assert _preview(client, intruder, year_school).status_code == 403
    token = _preview(client, own, year_school).get_json()["preview_token"]
    before = _state(svc, year_school.id)
    # The victim school's token, through the victim's path or the intruder's own school.
    assert _apply(client, intruder, year_school, token).status_code == 403
    response = _apply(client, intruder, other_school, token)
    assert response.status_code == 410 and response.get_json()["error"] == "preview_expired"
    assert client.post(f"/api/admin/schools/{year_school.code}/lifecycle/run",
                       headers=intruder).status_code == 403
    assert _state(svc, year_school.id) == before
    # A teacher of the school is no admin at all.
    teacher = token_of(make_account("teacher", in_school=year_school))
    assert _preview(client, teacher, year_school).status_code == 403


def test_unknown_school_is_404(client, platform_admin, token_of):
    response = _preview(client, token_of(platform_admin), type("S", (), {"code": "nope-x"}))
    assert response.status_code == 404


def test_allow_graduates_is_set_by_the_admin_api_only(client, svc, rp, platform_admin,
                                                     token_of):
    from idp.store.models import Client

    headers = token_of(platform_admin)
    path = f"/api/admin/clients/{rp.client_id}"
    current = client.get(path, headers=headers).get_json()
    assert current["allow_graduates"] is False
    body = {k: current[k] for k in ("client_name", "redirect_uris", "token_endpoint_auth_method",
                                    "post_logout_redirect_uris")}
    bad = client.put(path, json={**body, "allow_graduates": "yes"}, headers=headers)
    assert bad.status_code == 400
    done = client.put(path, json={**body, "allow_graduates": True}, headers=headers)
    assert done.status_code == 200 and done.get_json()["allow_graduates"] is True
    refused = client.post("/api/admin/clients", headers=headers, json={
        "client_name": "卒業生アプリ", "redirect_uris": ["https://alumni3.example.test/cb"],
        "allow_graduates": 1})
    assert refused.status_code == 400
    with svc.db.read() as s:  # a bad value registers nothing
        assert not s.scalars(select(Client).where(Client.name == "卒業生アプリ")).all()
    made = client.post("/api/admin/clients", headers=headers, json={
        "client_name": "卒業生アプリ", "redirect_uris": ["https://alumni2.example.test/cb"],
        "allow_graduates": True})
    assert made.status_code == 201 and made.get_json()["allow_graduates"] is True


# ----------------------------------------------------------------------------- lifecycle
def _graduate(svc, account_id: str, days_ago: int) -> None:
    from idp.store.models import Account, utcnow

    with svc.db.session() as s:
        account = s.get(Account, account_id)
        account.status, account.graduated_at = "graduated", utcnow() - timedelta(days=days_ago)


def test_lifecycle_run_deactivates_only_past_the_grace_period(
        client, svc, year_school, pupils, make_account, token_of, card_for, rp):
    from idp.store.models import Account, CardBinding, Consent, utcnow

    headers = token_of(make_account("school_admin", in_school=year_school))
    _graduate(svc, pupils["roku"], days_ago=91)
    _graduate(svc, pupils["go-a"], days_ago=89)
    card_for(pupils["roku"])
    with svc.db.session() as s:
        s.add(Consent(account_id=pupils["roku"], client_id=rp.client_id, scopes=["openid"]))
    url = f"/api/admin/schools/{year_school.code}/lifecycle/run"
    dry = client.post(url, headers=headers, query_string={"dry_run": "true"}).get_json()
    assert [d["login_id"] for d in dry["deactivated"]] == ["roku"]
    assert _state(svc, year_school.id)["roku"][2:] == ("graduated", True)
    done = client.post(url, headers=headers).get_json()
    assert [d["login_id"] for d in done["deactivated"]] == ["roku"]
    assert done["deactivated"][0]["removed"]["cards"] == 1
    assert done["deactivated"][0]["removed"]["consents"] == 1
    state = _state(svc, year_school.id)
    assert state["roku"][2:] == ("deactivated", False)
    assert state["go-a"][2:] == ("graduated", True)  # still in the grace period
    with svc.db.read() as s:
        gone = s.get(Account, pupils["roku"])
        assert gone.password_hash is None and gone.totp_secret is None
        assert gone.display_name == "roku" and gone.grade == "6"  # the school's record stays
        assert not s.scalars(select(CardBinding).where(
            CardBinding.account_id == gone.id)).all()
        assert gone.tokens_revoked_at is not None and gone.tokens_revoked_at <= utcnow()
    assert _audit_count(svc, "account.deactivated", year_school.id) == 1
    # Idempotent: a second run does nothing.
    assert client.post(url, headers=headers).get_json()["deactivated"] == []
    assert _audit_count(svc, "account.deactivated", year_school.id) == 1


def test_the_grace_period_is_the_schools(svc, year_school, pupils):
    from idp.accounts import lifecycle
    from idp.store.models import School, utcnow

    _graduate(svc, pupils["roku"], days_ago=31)
    with svc.db.session() as s:
        assert lifecycle.run(s, end_sessions=lambda _id: 0, school_id=year_school.id,
                             dry_run=True) == []
        s.get(School, year_school.id).graduate_grace_days = 30
        s.flush()
        due = lifecycle.run(s, end_sessions=lambda _id: 0, school_id=year_school.id,
                            dry_run=True, now=utcnow())
        assert [a.login_id for a in due] == ["roku"]
        s.rollback()


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def idp_cli(app, monkeypatch):
    from idp.cli import Ctx, cli, register_extra_commands

    monkeypatch.setattr(Ctx, "app", property(lambda self: app))
    register_extra_commands()

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_cli_promote_dry_run_then_apply(idp_cli, svc, year_school, pupils, tmp_path):
    roster = tmp_path / "classes.csv"
    roster.write_text(ROSTER_HEADER + "ichi,2,1\n", encoding="utf-8")
    before = _state(svc, year_school.id)
    dry = idp_cli("school", "promote", "--school", year_school.code, "--roster", str(roster),
                  "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "promote  ichi: grade 1 -> 2, class 2 -> 1" in dry.output
    assert "graduate roku" in dry.output and "cannot   nen" in dry.output
    assert _state(svc, year_school.id) == before
    done = idp_cli("school", "promote", "--school", year_school.code, "--roster", str(roster))
    assert done.exit_code == 0, done.output
    assert _state(svc, year_school.id)["ichi"][:2] == ("2", "1")
    assert _state(svc, year_school.id)["roku"][2] == "graduated"


def test_cli_refuses_a_bad_roster_and_unknown_school(idp_cli, svc, year_school, pupils,
                                                     tmp_path):
    roster = tmp_path / "classes.csv"
    roster.write_text(ROSTER_HEADER + "ichi,4,1\n", encoding="utf-8")
    before = _state(svc, year_school.id)
    bad = idp_cli("school", "promote", "--school", year_school.code, "--roster", str(roster))
    assert bad.exit_code == 2 and "grade_mismatch" in bad.output
    assert _state(svc, year_school.id) == before
    assert idp_cli("school", "promote", "--school", "no-such").exit_code == 2


def test_cli_lifecycle_run_prints_what_it_did(idp_cli, svc, year_school, pupils):
    _graduate(svc, pupils["roku"], days_ago=120)
    first = idp_cli("school", "lifecycle", "run", "--school", year_school.code)
    assert first.exit_code == 0, first.output
    assert f"deactivated {year_school.code}/roku" in first.output
    assert "deactivated 1 graduate(s)" in first.output
    second = idp_cli("school", "lifecycle", "run", "--school", year_school.code)
    assert "deactivated 0 graduate(s)" in second.output


# ----------------------------------------------------------------------------- the pages
def _page_upload(c, school_code: str, roster: bytes | None):
    import io

    from tests.admin.conftest import form_token

    data = {"csrf_token": form_token(c, "/admin/school-year"), "school": school_code}
    if roster is not None:
        data["file"] = (io.BytesIO(roster), "classes.csv")
    return c.post("/admin/school-year", data=data, content_type="multipart/form-data")


def _page_apply(c, html: str, school_code: str | None = None):
    from tests.admin.conftest import form_token, hidden

    return c.post("/admin/school-year/apply", data={
        "csrf_token": form_token(c, "/admin/school-year"),
        "preview_token": hidden(html, "preview_token"),
        "school": school_code or hidden(html, "school")})


def test_promotion_through_the_pages(app, svc, year_school, other_school, pupils,
                                     make_account):
    from tests.admin.conftest import admin_sign_in

    c = app.test_client()
    admin_sign_in(c, make_account("school_admin", in_school=year_school))
    start = c.get("/admin/school-year").get_data(as_text=True)
    assert year_school.code in start and other_school.code not in start
    before = _state(svc, year_school.id)
    preview = _page_upload(c, year_school.code, (ROSTER_HEADER + "ichi,2,4\n").encode("cp932"))
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html[:800]
    assert 'id="promotion-apply"' in html and "1 → 2" in html and "roku" in html
    assert _state(svc, year_school.id) == before  # the preview changed nothing
    done = _page_apply(c, html)
    assert done.status_code == 200 and 'id="promotion-done"' in done.get_data(as_text=True)
    assert _state(svc, year_school.id)["ichi"][:2] == ("2", "4")
    twice = _page_apply(c, html)
    assert twice.status_code == 409
    assert "もう反映しました" in twice.get_data(as_text=True)
    bad = _page_upload(c, year_school.code, (ROSTER_HEADER + "ichi,9,1\n").encode())
    assert bad.status_code == 422 and 'id="promotion-apply"' not in bad.get_data(as_text=True)


def test_the_page_keeps_another_schools_admin_out(app, svc, year_school, other_school, pupils,
                                                  make_account):
    from tests.admin.conftest import admin_sign_in

    owner = app.test_client()
    admin_sign_in(owner, make_account("school_admin", in_school=year_school))
    html = _page_upload(owner, year_school.code, None).get_data(as_text=True)
    intruder = app.test_client()
    admin_sign_in(intruder, make_account("school_admin", in_school=other_school))
    before = _state(svc, year_school.id)
    assert _page_upload(intruder, year_school.code, None).status_code == 400  # not a choice
    assert _page_apply(intruder, html).status_code == 403
    assert _page_apply(intruder, html, other_school.code).status_code == 409
    assert _state(svc, year_school.id) == before


def test_allow_graduates_on_the_client_page(app, svc, rp, platform_admin):
    from idp.store.models import Client
    from tests.admin.conftest import admin_sign_in
    from tests.conftest import csrf_of

    c = app.test_client()
    admin_sign_in(c, platform_admin)
    path = f"/admin/clients/{rp.client_id}"
    html = c.get(path).get_data(as_text=True)
    assert 'id="client-allow-graduates"' in html
    response = c.post(path, data={
        "csrf_token": csrf_of(html), "client_name": "テスト算数アプリ",
        "redirect_uris": rp.redirect_uri, "token_endpoint_auth_method": rp.auth_method,
        "scopes": ["openid", "school"], "id_token_signed_response_alg": "RS256",
        "required_acr": "", "allow_graduates": "y"})
    assert response.status_code == 303, response.get_data(as_text=True)[:800]
    with svc.db.read() as s:
        assert s.get(Client, rp.client_id).allow_graduates is True


def test_a_roster_deactivation_and_reactivation_keep_the_status_in_step(
        client, svc, year_school, pupils, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=year_school))
    rows = [("ichi", "1", "2"), ("go-a", "5", "1"), ("roku", "6", "3"), ("nen", "年長", "")]

    def import_roster(listed):
        text = "学校コード,ログインID,氏名,学年,組,区分\n" + "".join(
            f"{year_school.code},{login},{login},{grade},{klass},児童\n"
            for login, grade, klass in listed)
        return client.post("/api/admin/roster/import", data=text.encode(),
                           content_type="text/csv", headers=headers,
                           query_string={"deactivate_missing": "true"})

    assert import_roster(rows).status_code == 200  # go-b is not listed: deactivated
    assert _state(svc, year_school.id)["go-b"][2:] == ("deactivated", False)
    plan = _preview(client, headers, year_school).get_json()
    assert "go-b" not in {p["login_id"] for p in plan["promote"]}
    assert import_roster([*rows, ("go-b", "5", "2")]).status_code == 200  # back at school
    assert _state(svc, year_school.id)["go-b"][2:] == ("active", True)
    plan = _preview(client, headers, year_school).get_json()
    assert "go-b" in {p["login_id"] for p in plan["promote"]}


def test_the_due_list_shows_the_day_in_japan(app, svc, year_school, pupils, make_account):
    """A graduate whose access ended at 16:00 UTC on 1 January ended on 2 January in Japan:
    the school's page says the Japanese day."""
    from datetime import datetime

    from idp.store.models import Account
    from tests.admin.conftest import admin_sign_in

    grace = timedelta(days=year_school.graduate_grace_days or 90)
    with svc.db.session() as s:
        row = s.get(Account, pupils["roku"])
        row.status, row.graduated_at = "graduated", datetime(2026, 1, 1, 16, 0) - grace
    c = app.test_client()
    admin_sign_in(c, make_account("school_admin", in_school=year_school))
    html = c.get("/admin/school-year").get_data(as_text=True)
    assert 'id="lifecycle-due"' in html
    assert "(2026-01-02)" in html and "UTC" not in html


def test_a_school_sets_its_top_grade_and_grace_period(app, client, svc, year_school,
                                                        other_school, make_account, token_of,
                                                        idp_cli):
    """From the API, the CLI and the page; another school's admin cannot, and values out of
    range are a clear 400 that changes nothing."""
    from idp.store.models import School
    from tests.admin.conftest import admin_sign_in, form_token

    admin = make_account("school_admin", in_school=year_school)
    url = f"/api/admin/schools/{year_school.code}/school-year"
    done = client.put(url, json={"top_grade": 3, "graduate_grace_days": 30},
                      headers=token_of(admin))
    assert done.status_code == 200, done.get_json()
    assert done.get_json() == {"school_code": year_school.code, "top_grade": 3,
                               "graduate_grace_days": 30}
    for bad in ({"top_grade": 0}, {"top_grade": 13}, {"top_grade": "3"}, {"top_grade": True},
                {"graduate_grace_days": -1}, {"graduate_grace_days": 731}, {}, []):
        refused = client.put(url, json=bad, headers=token_of(admin))
        assert refused.status_code == 400, (bad, refused.get_json())
        assert refused.get_json()["error"] == "invalid_request"
    stranger = make_account("school_admin", in_school=other_school)
    assert client.put(url, json={"top_grade": 6},
                      headers=token_of(stranger)).status_code == 403
    with svc.db.read() as s:
        row = s.get(School, year_school.id)
        assert (row.top_grade, row.graduate_grace_days) == (3, 30)

    shown = idp_cli("school", "year-settings", "--school", year_school.code, "--top-grade", "6")
    assert shown.exit_code == 0, shown.output
    assert '"top_grade": 6' in shown.output and '"graduate_grace_days": 30' in shown.output
    wrong = idp_cli("school", "year-settings", "--school", year_school.code,
                    "--grace-days", "9999")
    assert wrong.exit_code == 2 and "invalid_request" in wrong.output

    c = app.test_client()
    admin_sign_in(c, admin)
    page = c.get("/admin/school-year").get_data(as_text=True)
    assert f'id="year-settings-{year_school.code}"' in page
    assert f'id="year-settings-{other_school.code}"' not in page
    token = form_token(c, "/admin/school-year")
    saved = c.post("/admin/school-year/settings", data={
        "csrf_token": token, "school": year_school.code, "top_grade": "4", "grace_days": "60"})
    assert saved.status_code == 200 and 'id="year-settings-saved"' in saved.get_data(as_text=True)
    across = c.post("/admin/school-year/settings", data={
        "csrf_token": token, "school": other_school.code, "top_grade": "4", "grace_days": "60"})
    assert across.status_code == 403
    no_csrf = c.post("/admin/school-year/settings", data={
        "school": year_school.code, "top_grade": "5", "grace_days": "60"})
    assert no_csrf.status_code == 400
    with svc.db.read() as s:
        row = s.get(School, year_school.id)
        assert (row.top_grade, row.graduate_grace_days) == (4, 60)
