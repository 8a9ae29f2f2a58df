"""OneRoster 1.2 CSV (Japan Profile) bundles: reading them, hostile bundles, My Numbers,
the same plan → import → sheets path as a CSV roster (API, page, CLI), sourcedId kept
across imports, deltas, another school's org, and the export for one app."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from click.testing import CliRunner

from idp.admin.oneroster import looks_like_my_number, parse_bundle
from idp.admin.oneroster_export import HEADERS
from idp.admin.roster import RosterFileError
from tests.admin.conftest import admin_sign_in, form_token, hidden
from tests.admin.oneroster_bundles import (
    USERS_HEADER,
    Person,
    bundle,
    bundle_files,
    class_of_five,
    csv_bytes,
    manifest_bytes,
    zip_bytes,
)
from tests.conftest import unique

# A My Number-shaped test value: 11 digits and the check digit of the published algorithm.
MY_NUMBER = "123456789018"


# ----------------------------------------------------------------------------- reading
@pytest.mark.parametrize("bom", [False, True])
def test_a_bulk_bundle_reads_into_roster_rows(bom):
    parsed = parse_bundle(bundle("S1", class_of_five(), bom=bom))
    assert parsed.mode == "bulk" and not parsed.errors
    rows = {r.login_id: r for r in parsed.rows}
    assert set(rows) == {"haruto", "yui", "sota", "sensei", "mama"}
    haruto = rows["haruto"]
    assert (haruto.school_code, haruto.display_name, haruto.grade, haruto.class_name,
            haruto.role) == ("S1", "佐藤 陽翔", "5", "1", "student")
    assert (haruto.sourced_id, haruto.kana_family_name, haruto.kana_given_name,
            haruto.student_number) == ("u-1", "サトウ", "ハルト", "1")
    assert rows["sota"].class_name == "2" and rows["sensei"].role == "teacher"
    mama = rows["mama"]  # a guardian: no grade or class, linked to a child by agents
    assert (mama.role, mama.grade, mama.class_name, mama.agents) == ("guardian", "", "",
                                                                     ("u-1",))
    assert parsed.skipped == [] and parsed.agents_given


def test_the_finders_resource_forks_are_ignored_but_other_folders_refused():
    files = bundle_files("S1", class_of_five())
    files["__MACOSX/._users.csv"] = b"\x00\x05\x16\x07 resource fork"
    assert len(parse_bundle(zip_bytes(files)).rows) == 5
    files["__MACOSX/../users.csv"] = b"x"
    with pytest.raises(RosterFileError) as err:
        parse_bundle(zip_bytes(files))
    assert err.value.code == "unsafe_path"


@pytest.mark.parametrize("grades,stored", [("P5", "5"), ("J1,J2", "1"), ("H3", "3"),
                                           ("Ｐ２", "2"), ("5", "5"), ("P7", "P7"), ("", "")])
def test_mext_grade_codes_become_the_grade_number_the_promotion_moves_up(grades, stored):
    from idp.admin.oneroster import grade_number

    assert grade_number(grades) == stored


def test_the_homeroom_comes_from_an_enrollment_when_home_class_is_blank():
    people = [Person("u-9", "kaito", "伊藤", "海斗", homeroom="hr-5-2", number="7")]
    files = bundle_files("S1", people)
    text = files["users.csv"].decode().replace(",hr-5-2\r\n", ",\r\n")
    files["users.csv"] = text.encode()
    [row] = parse_bundle(zip_bytes(files)).rows
    assert (row.class_name, row.student_number) == ("2", "7")


def test_half_width_kana_is_normalised_and_latin_letters_are_refused():
    ok = parse_bundle(bundle("S1", [Person("u-1", "a1", "山田", "太郎", "ﾔﾏﾀﾞ", "ﾀﾛｳ")]))
    assert ok.rows[0].kana_family_name == "ヤマダ"
    bad = parse_bundle(bundle("S1", [Person("u-1", "a1", "山田", "太郎", "Yamada", "タロウ")]))
    assert [(e.code, e.field, e.file) for e in bad.errors] == [
        ("bad_kana", "metadata.jp.kanaFamilyName", "users.csv")]


def _files_with(**changes: bytes | None) -> bytes:
    files = bundle_files("S1", class_of_five())
    for name, data in changes.items():
        name = name.replace("__", ".").replace("_dot_", ".")
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return zip_bytes(files)


def _zip_with_member(name: str, data: bytes) -> bytes:
    files = bundle_files("S1", class_of_five())
    files[name] = data
    return zip_bytes(files)


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in bundle_files("S1", class_of_five()).items():
            if name != "users.csv":
                archive.writestr(name, data)
        # 200 MB of one header and blank lines, a few hundred KB compressed.
        with archive.open("users.csv", "w", force_zip64=True) as member:
            member.write(",".join(USERS_HEADER).encode() + b"\r\n")
            chunk = b"\r\n" * (1024 * 1024)
            for _ in range(100):
                member.write(chunk)
    return buffer.getvalue()


@pytest.mark.parametrize("data,code", [
    (b"PK\x03\x04 not really a zip", "bad_zip"),
    (b"sourcedId,status\n", "bad_zip"),
    (lambda: _files_with(manifest_dot_csv=None), "missing_manifest"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes(version="1.1")),
     "bad_manifest_version"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes().replace(b"1.0", b"2.0", 1)),
     "bad_manifest_version"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes(users="sometimes")), "bad_manifest"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes(roles="delta")), "bad_manifest"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes(roles="absent")), "missing_file"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes(orgs="absent")), "missing_file"),
    (lambda: _files_with(manifest_dot_csv=manifest_bytes(users="absent")), "missing_file"),
    (lambda: _files_with(roles_dot_csv=None), "missing_file"),
    (lambda: _zip_with_member("../users.csv", b"x"), "unsafe_path"),
    (lambda: _zip_with_member("school/manifest.csv", b"x"), "unsafe_path"),
    (lambda: _zip_with_member("..\\..\\evil.csv", b"x"), "unsafe_path"),
    (lambda: _files_with(users_dot_csv="sourcedId,名前\n1,あ\n".encode("cp932")),
     "bad_encoding"),
    (lambda: _files_with(users_dot_csv=b"sourcedId,status\n\"" + b"x" * 200_000 + b"\"\n"),
     "bad_csv"),
    (lambda: _files_with(users_dot_csv=b"sourcedId,status\nu-1,\n"), "missing_columns"),
    (lambda: _files_with(users_dot_csv=csv_bytes(USERS_HEADER, [])), "empty"),
    (_bomb, "too_large"),
])
def test_hostile_and_broken_bundles_are_file_errors(data, code):
    with pytest.raises(RosterFileError) as err:
        parse_bundle(data() if callable(data) else data)
    assert err.value.code == code, str(err.value)


def test_my_number_check_digit():
    assert looks_like_my_number(MY_NUMBER) and looks_like_my_number("1234-5678-9018")
    assert not looks_like_my_number("123456789012")  # wrong check digit
    assert not looks_like_my_number("12345") and not looks_like_my_number("")


@pytest.mark.parametrize("where", ["header", "header_ja", "value", "user_ids"])
def test_a_my_number_is_refused_and_never_echoed(where):
    person = Person("u-1", "a1", "山田", "太郎")
    files = bundle_files("S1", [person])
    if where in ("header", "header_ja"):
        column = "metadata.jp.myNumber" if where == "header" else "個人番号"
        files["users.csv"] = csv_bytes((*USERS_HEADER, column), [
            ["u-1", "", "", "true", "a1", "", "太郎", "山田"] + [""] * 18 + ["000000000000"]])
    elif where == "value":
        person.extra = {"identifier": MY_NUMBER}
        files = bundle_files("S1", [person])
    else:
        person.extra = {"userIds": "{MyNumber:0000}"}
        files = bundle_files("S1", [person])
    with pytest.raises(RosterFileError) as err:
        parse_bundle(zip_bytes(files))
    assert err.value.code == "my_number"
    assert MY_NUMBER not in str(err.value) and "0000" not in str(err.value)


def test_unknown_and_non_school_orgs_are_row_errors():
    people = [Person("u-1", "a1", "山田", "太郎", org="org-nowhere"),
              Person("u-2", "a2", "山田", "次郎", org="board-1")]
    files = bundle_files("S1", people)
    header, *rows = files["roles.csv"].split(b"\r\n")[:-1]
    files["roles.csv"] = b"\r\n".join([header, *reversed(rows)]) + b"\r\n"
    parsed = parse_bundle(zip_bytes(files))
    # Each error names the line of the file it is in (roles.csv is in the other order).
    assert sorted((e.code, e.file, e.line) for e in parsed.errors) == [
        ("not_a_school", "roles.csv", 2), ("unknown_org", "roles.csv", 3)]


def test_a_bad_attendance_number_names_its_enrollment_line():
    people = [Person("u-1", "a1", "山田", "太郎", number="1"),
              Person("u-2", "a2", "山田", "次郎", number="二")]
    [error] = parse_bundle(bundle("S1", people)).errors
    assert (error.code, error.file, error.line, error.field) == (
        "bad_student_number", "enrollments.csv", 3, "metadata.jp.ShussekiNo")


def test_bulk_rows_may_not_say_tobedeleted_and_sourced_ids_are_unique():
    people = [Person("u-1", "a1", "山田", "太郎", status="tobedeleted"),
              Person("u-2", "a2", "山田", "次郎"), Person("u-2", "a3", "山田", "三郎")]
    codes = [e.code for e in parse_bundle(bundle("S1", people)).errors]
    assert "bad_status" in codes and "duplicate" in codes


# ----------------------------------------------------------------------------- the API
@pytest.fixture
def fresh_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("or"), name="ワンロスター小学校")
        s.add(row)
    return row


def _post(client, headers, path, data, **params):
    return client.post(path, data=data, content_type="application/zip", headers=headers,
                       query_string={"format": "oneroster", **params})


def _accounts(svc, school_id):
    from idp.store.models import Account

    with svc.db.session() as s:
        return {a.sourced_id or a.login_id: (a.id, a.login_id, a.display_name, a.grade,
                                             a.class_name, a.role, a.active,
                                             a.kana_family_name, a.kana_given_name,
                                             a.student_number)
                for a in s.query(Account).filter_by(school_id=school_id)}


def test_import_keeps_the_sourced_id_and_the_next_import_updates_the_same_account(
        client, svc, fresh_school, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    people = class_of_five()
    preview = _post(client, headers, "/api/admin/roster/preview", bundle(fresh_school.code,
                                                                          people))
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["summary"]["create"] == 5
    assert [(k["guardian"], k["child"]) for k in preview.get_json()["link"]] == [
        ("mama", "haruto")]
    first = _post(client, headers, "/api/admin/roster/import", bundle(fresh_school.code,
                                                                       people))
    assert first.status_code == 200 and first.get_json()["sheet_id"]
    before = _accounts(svc, fresh_school.id)
    assert before["u-1"][1:] == ("haruto", "佐藤 陽翔", "5", "1", "student", True,
                                 "サトウ", "ハルト", "1")
    # Next year: a new login id, grade and class for the same sourcedId.
    people[0].username, people[0].grade, people[0].homeroom = "haruto6", "P6", "hr-5-2"
    again = _post(client, headers, "/api/admin/roster/import", bundle(fresh_school.code,
                                                                       people)).get_json()
    assert again["summary"] == {"create": 0, "update": 1, "unchanged": 4, "deactivate": 0,
                                "errors": 0}
    assert again["update"][0]["fields"] == ["login_id", "grade", "class_name"]
    after = _accounts(svc, fresh_school.id)
    assert after["u-1"][0] == before["u-1"][0]  # the same account: the same subs everywhere
    assert after["u-1"][1:5] == ("haruto6", "佐藤 陽翔", "6", "2")


def test_a_delta_deactivates_tobedeleted_and_a_replay_is_harmless(
        client, svc, fresh_school, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    _post(client, headers, "/api/admin/roster/import", bundle(fresh_school.code,
                                                              class_of_five()))
    leaver = Person("u-2", "yui", "鈴木", "結衣", status="tobedeleted")
    moved = Person("u-3", "sota", "髙橋", "蒼太", "タカハシ", "ソウタ", homeroom="hr-5-1",
                   number="9")
    delta = bundle(fresh_school.code, [leaver, moved], mode="delta")
    refused = _post(client, headers, "/api/admin/roster/import", delta,
                    deactivate_missing="true")
    assert refused.status_code == 400 and refused.get_json()["error"] == "delta_deactivate"
    body = _post(client, headers, "/api/admin/roster/import", delta).get_json()
    assert body["applied"] and body["summary"]["deactivate"] == 1
    assert body["summary"]["update"] == 1
    rows = _accounts(svc, fresh_school.id)
    assert rows["u-2"][6] is False and rows["u-1"][6] is True  # deactivated, not deleted
    assert (rows["u-3"][4], rows["u-3"][9]) == ("1", "9")
    replay = _post(client, headers, "/api/admin/roster/import", delta).get_json()
    assert replay["applied"] and replay["summary"]["deactivate"] == 0
    assert _accounts(svc, fresh_school.id) == rows


def test_a_delta_without_roles_keeps_the_role_and_finds_the_school_by_primary_org(
        client, svc, fresh_school, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    _post(client, headers, "/api/admin/roster/import", bundle(fresh_school.code,
                                                              class_of_five()))
    files = bundle_files(fresh_school.code, [Person("t-1", "sensei", "田中", "先生", "タナカ",
                                                    "センセイ", role="teacher", grade="",
                                                    homeroom="hr-5-2")], mode="delta")
    del files["roles.csv"]
    files["manifest.csv"] = manifest_bytes("delta", roles="absent")
    body = _post(client, headers, "/api/admin/roster/import", zip_bytes(files)).get_json()
    assert body["applied"], body
    assert body["update"][0]["fields"] == ["class_name"]
    assert _accounts(svc, fresh_school.id)["t-1"][4:6] == ("2", "teacher")
    # A new person in such a delta has no role: refused, nothing written.
    files = bundle_files(fresh_school.code, [Person("n-1", "newbie", "新", "人")], mode="delta")
    del files["roles.csv"]
    files["manifest.csv"] = manifest_bytes("delta", roles="absent")
    refused = _post(client, headers, "/api/admin/roster/import", zip_bytes(files)).get_json()
    assert [e["code"] for e in refused["errors"]] == ["missing_field"]
    assert "n-1" not in _accounts(svc, fresh_school.id)


def test_a_school_admin_cannot_import_into_another_school(client, svc, fresh_school,
                                                          other_school, make_account,
                                                          token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    before_other = _accounts(svc, other_school.id)
    before_own = _accounts(svc, fresh_school.id)
    mixed = bundle_files(fresh_school.code, class_of_five())
    # The same bundle with one pupil's role at the other school's org.
    mixed["orgs.csv"] += f"org-2,,,となり小学校,school,{other_school.code},board-1\r\n".encode()
    mixed["roles.csv"] = mixed["roles.csv"].replace(b"student,,,org-1", b"student,,,org-2", 1)
    response = _post(client, headers, "/api/admin/roster/import", zip_bytes(mixed))
    assert response.status_code == 422 and response.get_json()["applied"] is False
    # (and the guardian's child is no longer in the school the guardian is in)
    assert [e["code"] for e in response.get_json()["errors"]] == ["other_school",
                                                                   "agent_not_in_school"]
    assert _accounts(svc, other_school.id) == before_other
    assert _accounts(svc, fresh_school.id) == before_own  # nothing half-imported


def test_unknown_school_code_and_file_errors_answer_400_or_422_never_500(
        client, svc, fresh_school, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    before = _accounts(svc, fresh_school.id)
    unknown = _post(client, headers, "/api/admin/roster/import",
                    bundle("no-such-school", class_of_five()))
    assert unknown.status_code == 422
    assert {e["code"] for e in unknown.get_json()["errors"]} == {"unknown_school"}
    broken = _post(client, headers, "/api/admin/roster/import", b"PK\x03\x04garbage")
    assert broken.status_code == 400 and broken.get_json()["error"] == "bad_zip"
    wrong = _post(client, headers, "/api/admin/roster/import", b"x", format="xml")
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "bad_format"
    huge = _post(client, headers, "/api/admin/roster/import", b"PK\x03\x04" + b"0" * 1_100_000)
    assert huge.status_code == 413 and huge.get_json()["error"] == "too_large"
    assert _accounts(svc, fresh_school.id) == before


# ----------------------------------------------------------------------------- export
def _read_zip(data: bytes) -> dict[str, list[dict[str, str]]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {name: list(csv.DictReader(io.StringIO(archive.read(name).decode())))
            for name in archive.namelist()}


def test_the_export_names_people_by_the_apps_pairwise_sub_only(
        client, svc, fresh_school, make_account, token_of, make_rp, other_school):
    from idp.oidc.claims import subject_for
    from idp.store.models import Account, Client

    admin = make_account("school_admin", in_school=fresh_school)
    headers = token_of(admin)
    _post(client, headers, "/api/admin/roster/import", bundle(fresh_school.code,
                                                              class_of_five()))
    rp = make_rp(host=unique("app") + ".example.test",
                 scopes=["openid", "profile", "school"])
    narrow = make_rp(host=unique("narrow") + ".example.test", scopes=["openid"])
    response = client.get("/api/admin/roster/export", headers=headers,
                          query_string={"client_id": rp.client_id})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    tables = _read_zip(response.data)
    with svc.db.session() as s:
        row = s.get(Client, rp.client_id)
        accounts = {a.login_id: a for a in s.query(Account).filter_by(
            school_id=fresh_school.id, active=True) if a.role in ("student", "teacher")}
        subs = {subject_for(svc.settings.pairwise_secret, row, a.id): a
                for a in accounts.values()}
    users = {u["sourcedId"]: u for u in tables["users.csv"]}
    assert set(users) == set(subs)
    for sub, user in users.items():
        assert user["userIds"] == f"{{Mynagate:{sub}}}" and user["username"] == sub
    raw = response.data + b"".join(zipfile.ZipFile(io.BytesIO(response.data)).read(n)
                                   for n in zipfile.ZipFile(io.BytesIO(response.data))
                                   .namelist())
    # Every word of every cell: a school's short sourcedId ("u-1") may occur by chance
    # inside a random pairwise sub or the compressed bytes, so it is looked for as a word.
    words = {word for rows in tables.values() for row in rows for cell in row.values()
             for word in re.findall(r"[A-Za-z0-9_.-]+", cell or "")}
    for account in accounts.values():
        assert account.id.encode() not in raw
        assert account.id not in words and account.sourced_id not in words
        assert account.login_id.encode() not in raw
    haruto = next(u for s, u in users.items() if subs[s].login_id == "haruto")
    assert (haruto["familyName"], haruto["givenName"], haruto["metadata.jp.kanaGivenName"],
            haruto["grades"]) == ("佐藤", "陽翔", "ハルト", "P5")
    # Our own export is a bundle our import reads (the same school, pairwise ids); a sub
    # starting with "-" or "_" (one in 32) is no login id here, and is an error row, not
    # silently dropped.
    from idp.admin.roster import LOGIN_ID_RE

    reread = parse_bundle(response.data)
    readable = {sub for sub in subs if LOGIN_ID_RE.match(sub)}
    assert {r.login_id for r in reread.rows} == readable
    assert len(reread.errors) == len(subs) - len(readable), reread.errors
    refused = client.get("/api/admin/roster/export", headers=headers,
                         query_string={"client_id": narrow.client_id})
    assert refused.status_code == 400 and refused.get_json()["error"] == "scope_not_allowed"
    other = client.get("/api/admin/roster/export", headers=headers, query_string={
        "client_id": rp.client_id, "school_code": other_school.code})
    assert other.status_code == 403
    missing = client.get("/api/admin/roster/export", headers=headers,
                         query_string={"client_id": "nope"})
    assert missing.status_code == 404


# ----------------------------------------------------------------------------- page, CLI
def test_the_admin_page_takes_a_zip_through_preview_apply_and_sheets(
        client, svc, fresh_school, make_account, make_rp):
    admin = make_account("school_admin", in_school=fresh_school)
    admin_sign_in(client, admin)
    page = client.post("/admin/roster", data={
        "csrf_token": form_token(client, "/admin/roster"),
        "file": (io.BytesIO(bundle(fresh_school.code, class_of_five())), "roster.zip")},
        content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:2000]
    assert "roster-links" in html and "mama → haruto" in html
    done = client.post("/admin/roster/apply", data={
        "csrf_token": hidden(html, "csrf_token"), "preview_id": hidden(html, "preview_id")})
    assert done.status_code == 200
    assert _accounts(svc, fresh_school.id)["u-1"][1] == "haruto"
    bad = client.post("/admin/roster", data={
        "csrf_token": form_token(client, "/admin/roster"),
        "file": (io.BytesIO(_zip_with_member("../x.csv", b"x")), "roster.zip")},
        content_type="multipart/form-data")
    assert bad.status_code == 400 and "zip" in bad.get_data(as_text=True)
    rp = make_rp(host=unique("pg") + ".example.test", scopes=["openid", "profile", "school"])
    exported = client.post("/admin/roster/export", data={
        "csrf_token": form_token(client, "/admin/roster"), "client_id": rp.client_id})
    assert exported.status_code == 200 and exported.mimetype == "application/zip"
    assert len(_read_zip(exported.data)["users.csv"]) == 4


def test_the_cli_imports_a_bundle_and_exports_one(app, svc, fresh_school, make_rp,
                                                  tmp_path):
    from idp.cli import Ctx, cli, register_extra_commands

    register_extra_commands()
    ctx = Ctx()
    ctx._app = app
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle(fresh_school.code, class_of_five("c")))
    dry = CliRunner().invoke(cli, ["roster", "import", "--oneroster", str(path), "--dry-run"],
                             obj=ctx)
    assert dry.exit_code == 0, dry.output
    assert _accounts(svc, fresh_school.id) == {}
    no_sheets = CliRunner().invoke(cli, ["roster", "import", "--oneroster", str(path)], obj=ctx)
    assert no_sheets.exit_code != 0 and "--sheets" in no_sheets.output
    sheets = tmp_path / "sheets.pdf"
    done = CliRunner().invoke(cli, ["roster", "import", "--oneroster", str(path), "--sheets",
                                    str(sheets)], obj=ctx)
    assert done.exit_code == 0, done.output
    assert sheets.read_bytes().startswith(b"%PDF")
    assert len(_accounts(svc, fresh_school.id)) == 5
    rp = make_rp(host=unique("cli") + ".example.test", scopes=["openid", "profile", "school"])
    out = tmp_path / "out.zip"
    exported = CliRunner().invoke(cli, ["roster", "export", "--oneroster", "--client",
                                        rp.client_id, "--school", fresh_school.code, "-o",
                                        str(out)], obj=ctx)
    assert exported.exit_code == 0, exported.output
    assert len(_read_zip(out.read_bytes())["users.csv"]) == 4
    broken = tmp_path / "broken.zip"
    broken.write_bytes(_files_with(manifest_dot_csv=None))
    refused = CliRunner().invoke(cli, ["roster", "import", "--oneroster", str(broken),
                                       "--dry-run"], obj=ctx)
    assert refused.exit_code != 0 and "missing_manifest" in refused.output


def test_a_delta_cannot_deactivate_another_schools_pupil_by_sourced_id(
        client, svc, fresh_school, other_school, make_account, token_of):
    """The sourcedId namespace is the school's: a school admin naming the other school's
    pupil's sourcedId as tobedeleted deactivates nobody."""
    theirs = token_of(make_account("school_admin", in_school=other_school))
    prefix = unique("x") + "-"
    imported = _post(client, theirs, "/api/admin/roster/import",
                     bundle(other_school.code, class_of_five(prefix)))
    assert imported.status_code == 200, imported.get_json()
    before = _accounts(svc, other_school.id)
    mine = token_of(make_account("school_admin", in_school=fresh_school))
    attack = bundle(fresh_school.code, [Person(prefix + "u-1", "whatever", "", "",
                                               status="tobedeleted")], mode="delta")
    body = _post(client, mine, "/api/admin/roster/import", attack).get_json()
    assert body["summary"]["deactivate"] == 0
    assert [s["code"] for s in body["skipped"]] == ["unknown_user"]
    assert _accounts(svc, other_school.id) == before


def test_a_new_sourced_id_cannot_take_over_an_account_with_another(
        client, svc, fresh_school, make_account, token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    _post(client, headers, "/api/admin/roster/import", bundle(fresh_school.code,
                                                              class_of_five()))
    before = _accounts(svc, fresh_school.id)
    intruder = [Person("someone-else", "haruto", "偽", "者")]
    body = _post(client, headers, "/api/admin/roster/import",
                 bundle(fresh_school.code, intruder)).get_json()
    assert [e["code"] for e in body["errors"]] == ["sourced_id_conflict"]
    assert _accounts(svc, fresh_school.id) == before


def test_a_transfer_leaves_the_sending_schools_sourced_id_behind(
        client, svc, fresh_school, other_school, make_account, token_of, platform_admin):
    """Both schools' roster systems may use the same sourcedId: a moved pupil arrives
    without the old one (no clash), and the new school's bundle adopts the account."""
    from idp.store.models import Account

    sender = token_of(make_account("school_admin", in_school=fresh_school))
    prefix = unique("t") + "-"
    _post(client, sender, "/api/admin/roster/import", bundle(fresh_school.code,
                                                             class_of_five(prefix)))
    receiver = token_of(make_account("school_admin", in_school=other_school))
    clash = Person(prefix + "u-1", prefix + "someone", "別", "人")
    _post(client, receiver, "/api/admin/roster/import", bundle(other_school.code, [clash]))
    moving = _accounts(svc, fresh_school.id)[prefix + "u-1"][0]
    moved = client.post(f"/api/admin/accounts/{moving}/transfer", headers=token_of(
        platform_admin), json={"school_code": other_school.code})
    assert moved.status_code == 200, moved.get_json()
    with svc.db.session() as s:
        row = s.get(Account, moving)
        assert (row.school_id, row.sourced_id, row.student_number) == (other_school.id, None,
                                                                       "")
    arrival = Person(prefix + "new-9", prefix + "haruto", "佐藤", "陽翔")
    body = _post(client, receiver, "/api/admin/roster/import",
                 bundle(other_school.code, [clash, arrival])).get_json()
    assert body["applied"] and body["summary"]["create"] == 0, body
    assert _accounts(svc, other_school.id)[prefix + "new-9"][0] == moving  # same account


DEMOGRAPHICS_HEADER = ("sourcedId", "status", "dateLastModified", "birthDate", "sex",
                       "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
                       "nativeHawaiianOrOtherPacificIslander", "white",
                       "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity",
                       "countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth",
                       "publicSchoolResidenceStatus")


def _with_demographics(files: dict[str, bytes], rows: list[list[str]]) -> bytes:
    files["demographics.csv"] = csv_bytes(DEMOGRAPHICS_HEADER, [
        row + [""] * (len(DEMOGRAPHICS_HEADER) - len(row)) for row in rows])
    files["manifest.csv"] = manifest_bytes(demographics="bulk")
    return zip_bytes(files)


def test_only_the_birth_date_of_demographics_is_kept_for_the_guardian_consent_age(
        client, svc, fresh_school, make_account, token_of):
    from idp.store.models import Account

    headers = token_of(make_account("school_admin", in_school=fresh_school))
    files = bundle_files(fresh_school.code, class_of_five())
    data = _with_demographics(files, [["u-1", "", "", "2015-06-01", "male"],
                                      ["u-2", "", "", "", "female"]])
    body = _post(client, headers, "/api/admin/roster/import", data).get_json()
    assert body["applied"], body
    with svc.db.session() as s:
        rows = {a.sourced_id: a for a in s.query(Account).filter_by(school_id=fresh_school.id)}
        assert str(rows["u-1"].birth_date) == "2015-06-01" and rows["u-2"].birth_date is None
    # A later bundle without demographics keeps the date; a bad date is an error.
    again = _post(client, headers, "/api/admin/roster/import",
                  bundle(fresh_school.code, class_of_five())).get_json()
    assert again["summary"]["update"] == 0
    with svc.db.session() as s:
        assert str(s.query(Account).filter_by(school_id=fresh_school.id, sourced_id="u-1")
                   .one().birth_date) == "2015-06-01"
    bad = _with_demographics(bundle_files(fresh_school.code, class_of_five()),
                             [["u-1", "", "", "2999-01-01"], ["u-2", "", "", "01/06/2015"]])
    errors = parse_bundle(bad).errors
    assert [(e.code, e.file, e.line) for e in errors] == [
        ("bad_birth_date", "demographics.csv", 2), ("bad_birth_date", "demographics.csv", 3)]
    # Never exported: the export has no demographics file.
    assert "demographics" not in " ".join(HEADERS)


def test_a_my_number_in_demographics_refuses_the_bundle():
    files = bundle_files("S1", class_of_five())
    with pytest.raises(RosterFileError) as err:
        parse_bundle(_with_demographics(files, [["u-1", "", "", "2015-06-01", "",
                                                 MY_NUMBER]]))
    assert err.value.code == "my_number" and "demographics.csv" in str(err.value)
