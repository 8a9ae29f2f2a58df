"""Roster import: encodings, headers, per-row errors, all-or-nothing, idempotence,
deactivation of leavers, and the first-password sheets."""

from __future__ import annotations

import pytest

from idp.admin.roster import RosterFileError, parse, plan_import
from tests.admin.conftest import admin_sign_in, form_token, hidden
from tests.conftest import unique

EN_HEADER = "school code,login id,display name,grade,class,role\n"
JA_HEADER = "学校コード,ログインID,氏名,学年,組,役割\n"


def _csv(school_code: str, rows: list[tuple[str, str, str, str, str]],
         header: str = JA_HEADER) -> str:
    return header + "".join(f"{school_code},{login},{name},{grade},{klass},{role}\n"
                            for login, name, grade, klass, role in rows)


# ----------------------------------------------------------------------------- pure parsing
def test_utf8_with_and_without_bom_and_cp932_read_the_same():
    text = _csv("S1", [("taro", "山田 太郎", "5", "2", "児童"), ("hana", "佐藤 花子", "5", "2",
                                                                 "児童")])
    variants = [text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8"),
                text.encode("cp932")]
    parsed = [parse(data) for data in variants]
    assert [p.encoding for p in parsed] == ["utf-8", "utf-8-sig", "cp932"]
    assert parsed[0].rows == parsed[1].rows == parsed[2].rows
    assert parsed[2].rows[0].display_name == "山田 太郎"


def test_english_and_japanese_headers_and_role_words():
    en = parse(_csv("S1", [("t1", "Ken", "1", "1", "teacher")], EN_HEADER).encode())
    ja = parse(_csv("S1", [("t1", "Ken", "1", "1", "教員")]).encode())
    assert en.rows[0].role == ja.rows[0].role == "teacher"
    # Full-width digits from Excel are normalised; extra columns ignored; order free.
    odd = parse("氏名,役割,ログインID,学校コード,学年,組,備考\n田中,生徒,ｔａｎａｋａ,S1,６,３,x\n"
                .encode())
    row = odd.rows[0]
    assert (row.login_id, row.grade, row.class_name, row.role) == ("tanaka", "6", "3",
                                                                   "student")


@pytest.mark.parametrize("data,code", [
    (b"", "empty"), (JA_HEADER.encode(), "empty"),
    ("名前だけ\nx\n".encode(), "missing_columns"),
    (b"\xff\xfe\x00a\x00b", "bad_encoding"), (b"\x81\x7f\xff\xff", "bad_encoding"),
])
def test_unreadable_files(data, code):
    with pytest.raises(RosterFileError) as err:
        parse(data)
    assert err.value.code == code


def test_row_errors_name_their_line_and_field():
    text = _csv("S1", [("ok1", "一郎", "1", "1", "児童"), ("bad id!", "二郎", "1", "1", "児童"),
                       ("ok2", "", "1", "1", "児童"), ("ok3", "三郎", "1", "1", "校長"),
                       ("OK1", "四郎", "1", "1", "児童"), ("adm", "五郎", "1", "1",
                                                          "school_admin")])
    parsed = parse(text.encode())
    found = {(e.line, e.code, e.field) for e in parsed.errors}
    assert found == {(3, "bad_login_id", "login_id"), (4, "missing_field", "display_name"),
                     (5, "bad_role", "role"), (6, "duplicate", "login_id"),
                     (7, "admin_role", "role")}
    assert [r.login_id for r in parsed.rows] == ["ok1"]


def test_plan_refuses_unknown_and_other_schools():
    parsed = parse(_csv("S1", [("a", "A", "1", "1", "児童")]).encode()
                   + "S2,b,B,1,1,児童\nS9,c,C,1,1,児童\n".encode())
    plan = plan_import(parsed, school_ids={"S1": "id1", "S2": "id2"},
                       allowed_school_ids={"id1"}, existing=[], deactivate_missing=False)
    assert [(e.line, e.code) for e in plan.errors] == [(3, "other_school"),
                                                       (4, "unknown_school")]
    assert not plan.valid


# ----------------------------------------------------------------------------- through the API
def _accounts_snapshot(svc, school_id):
    from idp.store.models import Account

    with svc.db.session() as s:
        return {(a.login_id, a.display_name, a.grade, a.class_name, a.role, a.active,
                 a.password_hash, a.updated_at)
                for a in s.query(Account).filter_by(school_id=school_id)}


@pytest.fixture
def fresh_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("ros"), name="名簿小学校")
        s.add(row)
    return row


def _post(client, headers, path, text, encoding="utf-8", **params):
    return client.post(path, data=text.encode(encoding), content_type="text/csv",
                       headers=headers, query_string=params)


def test_import_creates_then_reimport_changes_nothing(client, svc, fresh_school,
                                                     school_admin, make_account, token_of):
    admin = make_account("school_admin", in_school=fresh_school)
    headers = token_of(admin)
    text = _csv(fresh_school.code, [("s1", "一郎", "3", "1", "児童"), ("s2", "二郎", "3", "2",
                                                                      "児童"),
                                    ("t1", "先生", "", "", "教員")])
    preview = _post(client, headers, "/api/admin/roster/preview", text).get_json()
    assert preview["summary"] == {"create": 3, "update": 0, "unchanged": 0, "deactivate": 0,
                                  "errors": 0}
    assert _accounts_snapshot(svc, fresh_school.id) == {
        a for a in _accounts_snapshot(svc, fresh_school.id) if a[0] == admin.login_id}
    first = _post(client, headers, "/api/admin/roster/import", text)
    assert first.status_code == 200 and first.get_json()["applied"] is True
    assert first.get_json()["sheet_id"]
    before = _accounts_snapshot(svc, fresh_school.id)
    again = _post(client, headers, "/api/admin/roster/import", text, encoding="cp932")
    assert again.get_json()["summary"]["unchanged"] == 3
    assert again.get_json()["sheet_id"] is None
    assert _accounts_snapshot(svc, fresh_school.id) == before


def test_a_bad_row_in_the_middle_writes_nothing(client, svc, fresh_school, make_account,
                                                token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    before = _accounts_snapshot(svc, fresh_school.id)
    text = _csv(fresh_school.code, [("m1", "一郎", "1", "1", "児童"),
                                    ("m 2", "二郎", "1", "1", "児童"),
                                    ("m3", "三郎", "1", "1", "児童")])
    response = _post(client, headers, "/api/admin/roster/import", text)
    assert response.status_code == 422 and response.get_json()["applied"] is False
    assert response.get_json()["errors"][0]["line"] == 3
    assert _accounts_snapshot(svc, fresh_school.id) == before


def test_duplicates_in_the_file_write_nothing(client, svc, fresh_school, make_account,
                                              token_of):
    headers = token_of(make_account("school_admin", in_school=fresh_school))
    before = _accounts_snapshot(svc, fresh_school.id)
    text = _csv(fresh_school.code, [("d1", "一郎", "1", "1", "児童"),
                                    ("d1", "一郎", "1", "1", "児童")])
    body = _post(client, headers, "/api/admin/roster/import", text).get_json()
    assert body["errors"] == [{"line": 3, "code": "duplicate", "field": "login_id",
                               "column": "ログインID",  # the file's own header
                               "detail": "same login id as line 2"}]
    assert _accounts_snapshot(svc, fresh_school.id) == before


def test_updates_and_deactivation_of_leavers_only_when_asked(client, svc, fresh_school,
                                                             make_account, token_of):
    from idp.store.models import Account

    headers = token_of(make_account("school_admin", in_school=fresh_school))
    code = fresh_school.code
    _post(client, headers, "/api/admin/roster/import",
          _csv(code, [("u1", "一郎", "4", "1", "児童"), ("u2", "二郎", "4", "1", "児童"),
                      ("ut", "先生", "", "", "教員")]))
    next_year = _csv(code, [("u1", "一郎", "5", "2", "児童")])
    kept = _post(client, headers, "/api/admin/roster/import", next_year).get_json()
    assert kept["summary"]["update"] == 1 and kept["summary"]["deactivate"] == 0
    left = _post(client, headers, "/api/admin/roster/import", next_year,
                 deactivate_missing="true").get_json()
    assert [d["login_id"] for d in left["deactivate"]] == ["u2"]  # never the teacher
    with svc.db.session() as s:
        rows = {a.login_id: a for a in s.query(Account).filter_by(school_id=fresh_school.id)}
        assert (rows["u1"].grade, rows["u1"].class_name) == ("5", "2")
        assert rows["u2"].active is False and rows["ut"].active is True  # not deleted
    back = _post(client, headers, "/api/admin/roster/import",
                 _csv(code, [("u2", "二郎", "5", "1", "児童")])).get_json()
    assert back["update"][0]["fields"] == ["grade", "active"]


def test_first_passwords_work_and_the_sheet_is_a_pdf(client, svc, fresh_school,
                                                     make_account, token_of):
    from idp.accounts.roles import Actor
    from idp.admin.roster_service import load_sheet
    from idp.signin.passwords import verify_password
    from idp.store.models import Account

    admin = make_account("school_admin", in_school=fresh_school)
    headers = token_of(admin)
    body = _post(client, headers, "/api/admin/roster/import",
                 _csv(fresh_school.code, [("p1", "一郎", "1", "1", "児童"),
                                          ("p2", "二郎", "1", "2", "児童")])).get_json()
    entries = load_sheet(svc, Actor(admin.id, admin.role, admin.school_id), body["sheet_id"])
    with svc.db.session() as s:
        for entry in entries:
            account = s.query(Account).filter_by(school_id=fresh_school.id,
                                                 login_id=entry["login_id"]).one()
            assert verify_password(account.password_hash, entry["password"])
            assert account.must_change_password is True  # the slip's is for once only
    pdf = client.get(f"/api/admin/roster/sheets/{body['sheet_id']}", headers=headers)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF") and pdf.data.count(b"/Type /Page\n") == 2  # 2 classes
    other = token_of(make_account("school_admin", in_school=fresh_school))
    assert client.get(f"/api/admin/roster/sheets/{body['sheet_id']}",
                      headers=other).status_code == 404


def _upload(c, data: bytes, filename: str, path: str = "/admin/roster"):
    import io

    return c.post(path, data={"csrf_token": form_token(c, "/admin/roster"),
                              "file": (io.BytesIO(data), filename)},
                  content_type="multipart/form-data")


def test_roster_through_the_pages(app, svc, fresh_school, make_account):
    admin = make_account("school_admin", in_school=fresh_school)
    c = app.test_client()
    admin_sign_in(c, admin)
    text = _csv(fresh_school.code, [("w1", "一郎", "2", "1", "児童")])
    preview = _upload(c, text.encode("cp932"), "meibo.csv")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html[:800]
    assert 'id="roster-apply"' in html
    done = c.post("/admin/roster/apply", data={"csrf_token": form_token(c, "/admin/roster"),
                                               "preview_id": hidden(html, "preview_id")})
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and 'id="roster-sheet-all"' in page
    import re

    sheet = re.search(r'id="roster-sheet-all" class="primary" href="([^"]+)"', page).group(1)
    assert c.get(sheet).data.startswith(b"%PDF")
    bad = _csv(fresh_school.code, [("w2", "", "2", "1", "児童")]).encode()
    refused = _upload(c, bad, "bad.csv")
    assert refused.status_code == 422
    assert 'id="roster-errors"' in refused.get_data(as_text=True)
    assert 'id="roster-apply"' not in refused.get_data(as_text=True)
    assert "必要な項目が空です。" in refused.get_data(as_text=True)
    english = _upload(c, bad, "bad.csv", path="/admin/roster?lang=en")
    assert english.status_code == 422
    assert "A required field is empty." in english.get_data(as_text=True)
    unreadable = _upload(c, b"\xff\xfe\x00bad", "bad.csv")
    assert unreadable.status_code == 400
    assert "The character encoding cannot be read" in unreadable.get_data(as_text=True)


def test_school_form_errors_are_in_the_readers_language(app, platform_admin):
    c = app.test_client()
    admin_sign_in(c, platform_admin)
    taken = {"csrf_token": form_token(c, "/admin/schools"),
             "code": platform_admin.school_code, "name": "二つ目"}
    japanese = c.post("/admin/schools", data=taken)
    assert japanese.status_code == 400
    assert "この学校コードは、もう登録されています。" in japanese.get_data(as_text=True)
    english = c.post("/admin/schools?lang=en", data=taken)
    assert english.status_code == 400
    assert "This school code is already registered." in english.get_data(as_text=True)
