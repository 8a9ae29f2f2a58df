"""Guardians from the roster: a OneRoster bundle's guardian/parent/relative roles become
guardian accounts linked to children by ``agentSourcedIds`` (either side), in the same
preview → import → sheets path; a bulk bundle ends only the links a roster made; the abuse
cases (another school's child, a guardian row made staff, a pupil made a pupil's guardian)."""

from __future__ import annotations

import pytest

from idp.admin.oneroster import parse_bundle
from tests.admin.oneroster_bundles import (
    USERS_HEADER,
    Person,
    bundle,
    bundle_files,
    csv_bytes,
    zip_bytes,
)
from tests.conftest import unique


@pytest.fixture
def fresh_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("gr"), name="ほごしゃ小学校")
        s.add(row)
    return row


@pytest.fixture
def admin_headers(fresh_school, make_account, token_of):
    return token_of(make_account("school_admin", in_school=fresh_school))


def _post(client, headers, path, data, **params):
    return client.post(path, data=data, content_type="application/zip", headers=headers,
                       query_string={"format": "oneroster", **params})


def _family(prefix: str = "", *, mother_agents: str | None = None,
            child_agents: str = "") -> list[Person]:
    """Two pupils and two guardians: the mother names her child (the guardian side), the
    second pupil names the father (the student side)."""
    mother = f"{prefix}u-1" if mother_agents is None else mother_agents
    return [
        Person(f"{prefix}u-1", f"{prefix}haruto", "佐藤", "陽翔", extra={
            "agentSourcedIds": child_agents}),
        Person(f"{prefix}u-2", f"{prefix}yui", "鈴木", "結衣", extra={
            "agentSourcedIds": f"{prefix}g-2"}),
        Person(f"{prefix}g-1", f"{prefix}mama", "佐藤", "母", role="guardian", grade="",
               homeroom="", extra={"agentSourcedIds": mother}),
        Person(f"{prefix}g-2", f"{prefix}papa", "鈴木", "父", role="parent", grade="",
               homeroom=""),
    ]


def _state(svc, school_id):
    """{login id: (role, active)} and {(guardian login, child login): origin}."""
    from sqlalchemy.orm import aliased

    from idp.store.models import Account, GuardianLink

    with svc.db.session() as s:
        people = {a.login_id: (a.role, a.active)
                  for a in s.query(Account).filter_by(school_id=school_id)
                  if a.role != "school_admin"}  # the importing admin is not the roster's
        guardian, child = aliased(Account), aliased(Account)
        links = {(g.login_id, c.login_id): link.origin for link, g, c in
                 s.query(GuardianLink, guardian, child)
                 .join(guardian, guardian.id == GuardianLink.guardian_id)
                 .join(child, child.id == GuardianLink.child_id)
                 .filter(child.school_id == school_id)}
    return people, links


def test_the_parser_reads_guardians_and_their_agents():
    parsed = parse_bundle(bundle("S1", _family()))
    rows = {r.login_id: r for r in parsed.rows}
    assert (rows["mama"].role, rows["mama"].agents) == ("guardian", ("u-1",))
    assert (rows["papa"].role, rows["papa"].grade) == ("guardian", "")  # parent → guardian
    assert rows["yui"].agents == ("g-2",) and parsed.skipped == []


def test_preview_shows_the_links_and_the_import_makes_them_with_sheets(
        client, svc, fresh_school, admin_headers):
    data = bundle(fresh_school.code, _family())
    preview = _post(client, admin_headers, "/api/admin/roster/preview", data).get_json()
    assert preview["valid"] and preview["summary"]["create"] == 4
    assert sorted((k["guardian"], k["child"]) for k in preview["link"]) == [
        ("mama", "haruto"), ("papa", "yui")]
    assert _state(svc, fresh_school.id) == ({}, {})  # the preview wrote nothing
    done = _post(client, admin_headers, "/api/admin/roster/import", data).get_json()
    assert done["applied"] and len(done["link"]) == 2
    people, links = _state(svc, fresh_school.id)
    assert people["mama"] == ("guardian", True) and people["papa"] == ("guardian", True)
    assert links == {("mama", "haruto"): "roster", ("papa", "yui"): "roster"}
    sheet = svc.store.get(f"roster-sheet:{done['sheet_id']}")["entries"]
    assert {e["login_id"] for e in sheet} == {"haruto", "yui", "mama", "papa"}
    assert all(e["password"] for e in sheet)  # guardians get a first password too
    again = _post(client, admin_headers, "/api/admin/roster/import", data).get_json()
    assert again["applied"] and again["link"] == [] and again["unlink"] == []
    assert _state(svc, fresh_school.id)[1] == links


def test_both_sides_naming_each_other_make_one_link(client, svc, fresh_school,
                                                    admin_headers):
    data = bundle(fresh_school.code, _family(child_agents="g-1"))
    done = _post(client, admin_headers, "/api/admin/roster/import", data).get_json()
    assert done["applied"] and len(done["link"]) == 2
    assert set(_state(svc, fresh_school.id)[1]) == {("mama", "haruto"), ("papa", "yui")}


def test_a_bulk_ends_the_roster_links_it_no_longer_names_but_never_a_hand_made_one(
        client, svc, fresh_school, admin_headers):
    from idp.store.models import Account, GuardianLink

    _post(client, admin_headers, "/api/admin/roster/import",
          bundle(fresh_school.code, _family()))
    with svc.db.session() as s:  # the school links papa to haruto by hand
        by_login = {a.login_id: a.id for a in s.query(Account).filter_by(
            school_id=fresh_school.id)}
        s.add(GuardianLink(guardian_id=by_login["papa"], child_id=by_login["haruto"],
                           created_by="school admin"))
    # Next bulk: the mother no longer names haruto; the father is still yui's.
    data = bundle(fresh_school.code, _family(mother_agents=""))
    preview = _post(client, admin_headers, "/api/admin/roster/preview", data).get_json()
    assert [(k["guardian"], k["child"]) for k in preview["unlink"]] == [("mama", "haruto")]
    done = _post(client, admin_headers, "/api/admin/roster/import", data).get_json()
    assert done["applied"]
    assert _state(svc, fresh_school.id)[1] == {("papa", "yui"): "roster",
                                                ("papa", "haruto"): "school"}
    # A bulk whose users.csv has no agentSourcedIds column says nothing about links.
    files = bundle_files(fresh_school.code, _family())
    header = [c for c in USERS_HEADER if c != "agentSourcedIds"]
    rows = [line.split(",") for line in files["users.csv"].decode().splitlines()[1:]]
    index = USERS_HEADER.index("agentSourcedIds")
    files["users.csv"] = csv_bytes(header, [r[:index] + r[index + 1:] for r in rows])
    quiet = _post(client, admin_headers, "/api/admin/roster/import", zip_bytes(files))
    assert quiet.get_json()["applied"] and quiet.get_json()["unlink"] == []
    assert len(_state(svc, fresh_school.id)[1]) == 2


def test_a_delta_adds_links_and_tobedeleted_deactivates_a_guardian(
        client, svc, fresh_school, admin_headers):
    _post(client, admin_headers, "/api/admin/roster/import",
          bundle(fresh_school.code, _family(mother_agents="")))
    assert _state(svc, fresh_school.id)[1] == {("papa", "yui"): "roster"}
    # A delta names the mother again with her child: the link is added, none ended.
    mother = Person("g-1", "mama", "佐藤", "母", role="guardian", grade="", homeroom="",
                    extra={"agentSourcedIds": "u-1"})
    father = Person("g-2", "papa", "鈴木", "父", role="guardian", grade="", homeroom="",
                    status="tobedeleted")
    child = Person("u-1", "haruto", "佐藤", "陽翔")  # (a delta's enrollments.csv has rows)
    delta = bundle(fresh_school.code, [child, mother, father], mode="delta")
    done = _post(client, admin_headers, "/api/admin/roster/import", delta).get_json()
    assert done.get("applied"), done
    assert [(k["guardian"], k["child"]) for k in done["link"]] == [("mama", "haruto")]
    assert done["unlink"] == [] and done["summary"]["deactivate"] == 1
    people, links = _state(svc, fresh_school.id)
    assert people["papa"] == ("guardian", False)  # deactivated, never deleted
    assert set(links) == {("papa", "yui"), ("mama", "haruto")}


def test_an_agent_in_another_school_is_refused_and_nothing_is_written(
        client, svc, fresh_school, other_school, admin_headers, make_account, token_of):
    other_headers = token_of(make_account("school_admin", in_school=other_school))
    _post(client, other_headers, "/api/admin/roster/import",
          bundle(other_school.code, [Person("x-1", unique("kid"), "他", "校")]))
    before_other = _state(svc, other_school.id)
    family = _family(mother_agents="u-1,x-1")  # x-1: a pupil of the other school
    response = _post(client, admin_headers, "/api/admin/roster/import",
                     bundle(fresh_school.code, family))
    body = response.get_json()
    assert response.status_code == 422 and body["applied"] is False
    assert [(e["code"], e["field"], e["detail"]) for e in body["errors"]] == [
        ("agent_not_in_school", "agentSourcedIds", "x-1")]
    assert _state(svc, fresh_school.id) == ({}, {})
    assert _state(svc, other_school.id) == before_other


def test_a_pupil_cannot_be_a_pupils_guardian_nor_a_guardian_a_teachers(
        client, svc, fresh_school, admin_headers):
    family = _family(child_agents="u-2")  # haruto names yui, a pupil, as a guardian
    family.append(Person("t-1", "sensei", "田中", "先生", role="teacher", grade=""))
    family[2].extra["agentSourcedIds"] = "t-1"  # the mother names a teacher as her child
    response = _post(client, admin_headers, "/api/admin/roster/import",
                     bundle(fresh_school.code, family))
    assert response.status_code == 422
    assert sorted(e["code"] for e in response.get_json()["errors"]) == [
        "agent_not_guardian", "agent_not_student"]
    assert _state(svc, fresh_school.id) == ({}, {})


def test_a_guardian_row_never_makes_staff_and_staff_never_become_guardians(
        client, svc, fresh_school, admin_headers, make_account):
    from idp.store.models import Account

    _post(client, admin_headers, "/api/admin/roster/import", bundle(fresh_school.code, [
        Person("t-1", "sensei", "田中", "先生", role="teacher", grade=""),
        Person("g-1", "mama", "佐藤", "母", role="guardian", grade="", homeroom="")]))
    # The guardian's sourcedId now says teacher; the teacher's says guardian: both refused.
    swapped = bundle(fresh_school.code, [
        Person("t-1", "sensei", "田中", "先生", role="guardian", grade=""),
        Person("g-1", "mama", "佐藤", "母", role="teacher", grade="", homeroom="")])
    response = _post(client, admin_headers, "/api/admin/roster/import", swapped)
    assert response.status_code == 422
    assert [e["code"] for e in response.get_json()["errors"]] == ["role_change_refused"] * 2
    # A guardian row aimed at an admin's login id is refused like any admin row.
    admin = make_account("school_admin", in_school=fresh_school)
    with svc.db.session() as s:
        admin_login = s.get(Account, admin.id).login_id
    takeover = _post(client, admin_headers, "/api/admin/roster/import", bundle(
        fresh_school.code, [Person("u-9", unique("kid"), "子", "供"),
                            Person("g-9", admin_login, "乗", "取", role="guardian",
                                   grade="", homeroom="")]))
    assert [e["code"] for e in takeover.get_json()["errors"]] == ["admin_account"]
    people, _ = _state(svc, fresh_school.id)
    assert people["sensei"][0] == "teacher" and people["mama"][0] == "guardian"
    with svc.db.session() as s:
        assert s.get(Account, admin.id).role == "school_admin"


def test_a_csv_roster_may_name_guardians(client, svc, fresh_school, admin_headers):
    code = fresh_school.code
    csv_text = ("学校コード,ログインID,氏名,学年,組,役割\r\n"
                f"{code},kana,山田 花,3,1組,児童\r\n{code},hanamama,山田 母,,,保護者\r\n")
    response = client.post("/api/admin/roster/import", data=csv_text.encode(),
                           content_type="text/csv", headers=admin_headers)
    assert response.status_code == 200 and response.get_json()["applied"], response.get_json()
    assert _state(svc, fresh_school.id)[0]["hanamama"] == ("guardian", True)
