"""The roster preview a school's IT person reads before anything is written: every row as it
will be written (decoded names, grade and class, role; teachers as 「先生」), before → after
for existing accounts, errors named by the file's own columns, and a template CSV."""

from __future__ import annotations

import csv
import html as html_lib
import io
import re

import pytest

from idp.admin.roster import parse
from tests.admin.conftest import admin_sign_in, form_token, hidden
from tests.admin.test_roster import JA_HEADER, _csv, _upload
from tests.conftest import unique


@pytest.fixture
def fresh_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("prv"), name="確認小学校")
        s.add(row)
    return row


def _rows(page: str) -> dict[str, str]:
    """login id -> the row's text (tags stripped), from the preview's table."""
    found = {}
    for login, body in re.findall(r'<tr data-fate="\w+" data-login="([^"]+)">(.*?)</tr>',
                                  page, re.S):
        found[login] = html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))
    return found


def _signed_in(app, make_account, school):
    admin = make_account("school_admin", in_school=school)
    c = app.test_client()
    admin_sign_in(c, admin)
    return c, admin


def test_the_preview_shows_every_row_as_it_will_be_written(app, svc, fresh_school,
                                                           make_account):
    c, _ = _signed_in(app, make_account, fresh_school)
    first = _csv(fresh_school.code, [("mv1", "森 一郎", "4", "1", "児童"),
                                     ("gone1", "林 二郎", "4", "1", "児童")])
    done = c.post("/admin/roster/apply", data={
        "csrf_token": form_token(c, "/admin/roster"),
        "preview_id": hidden(_upload(c, first.encode(), "a.csv").get_data(as_text=True),
                             "preview_id")})
    assert done.status_code == 200
    second = _csv(fresh_school.code, [("mv1", "森 一郎", "5", "2", "児童"),
                                      ("new1", "山田 太郎", "5", "2", "児童"),
                                      ("sensei", "鈴木 先生", "5", "2", "教員")])
    page = c.post("/admin/roster", data={
        "csrf_token": form_token(c, "/admin/roster"), "deactivate_missing": "y",
        "file": (io.BytesIO(second.encode("cp932")), "meibo.csv")},
        content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert page.status_code == 200, text[:600]
    assert "Shift_JIS" in text  # how the file was read, so a garbled name is spotted
    rows = _rows(text)
    assert set(rows) == {"mv1", "new1", "sensei", "gone1"}
    assert "新しく作る" in rows["new1"] and "山田 太郎" in rows["new1"]
    assert "5年 2組" in rows["new1"] and "児童生徒" in rows["new1"]
    # A teacher is 「先生」, never 「5年 2組」, whatever grade the file gave.
    assert "先生" in rows["sensei"] and "年" not in rows["sensei"].replace("鈴木 先生", "")
    assert "組" not in rows["sensei"]
    # What changes for an existing account, by the file's own column names.
    assert "変更する" in rows["mv1"]
    assert "学年: 4 → 5" in rows["mv1"] and "組: 1 → 2" in rows["mv1"]
    assert "無効にする" in rows["gone1"] and "有効 → 無効" in rows["gone1"]


def test_row_errors_name_the_files_own_columns(app, fresh_school, make_account):
    c, _ = _signed_in(app, make_account, fresh_school)
    # The school's own spellings: 「なまえ」 and 「クラス」, not our 氏名 and 組.
    text = (f"学校コード,ログインID,なまえ,学年,クラス,役割\n"
            f"{fresh_school.code},e1,,3,1,児童\n{fresh_school.code},e2,二郎,3,"
            + "x" * 40 + ",児童\n")
    page = _upload(c, text.encode("utf-8"), "e.csv").get_data(as_text=True)
    errors = re.search(r'<table id="roster-errors">(.*?)</table>', page, re.S).group(1)
    assert '<td data-field="display_name">なまえ</td>' in errors
    assert '<td data-field="class_name">クラス</td>' in errors
    english = ("School Code,Login ID,Name,Grade,Class,Role\n"
               f"{fresh_school.code},e3,,3,1,student\n")
    page = _upload(c, english.encode(), "e.csv").get_data(as_text=True)
    assert '<td data-field="display_name">Name</td>' in page
    assert 'id="roster-apply"' not in page and 'id="roster-rows"' not in page


def test_missing_columns_are_named_in_the_files_language():
    from idp.admin.roster import RosterFileError

    with pytest.raises(RosterFileError) as ja:
        parse("学校コード,氏名,学年,組\nS1,山田,1,1\n".encode())
    assert ja.value.detail == "ログインID, 役割"
    with pytest.raises(RosterFileError) as en:
        parse(b"school code,display name\nS1,Ken\n")
    assert en.value.detail == "login id, role"
    assert "login_id" in str(en.value)  # the API's message keeps the field names too


def test_missing_columns_on_the_page(app, fresh_school, make_account):
    c, _ = _signed_in(app, make_account, fresh_school)
    page = _upload(c, "学校コード,氏名\nS1,山田\n".encode("cp932"), "m.csv")
    assert page.status_code == 400
    assert "ログインID, 役割" in page.get_data(as_text=True)


def test_the_template_csv_opens_in_excel_and_imports_as_it_is(app, svc, fresh_school,
                                                               make_account):
    c, _ = _signed_in(app, make_account, fresh_school)
    assert 'id="roster-template"' in c.get("/admin/roster").get_data(as_text=True)
    response = c.get("/admin/roster/template.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.data
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8, not Shift_JIS
    assert b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == JA_HEADER.strip().split(",")
    assert all(row[0] == fresh_school.code for row in rows[1:])  # the admin's own school
    parsed = parse(data)
    assert {r.role for r in parsed.rows} == {"student", "teacher"} and not parsed.errors
    preview = _upload(c, data, "template.csv")
    assert preview.status_code == 200
    rows_seen = _rows(preview.get_data(as_text=True))
    assert "山田 花子" in rows_seen["h-yamada"] and "先生" in rows_seen["t-suzuki"]


def test_the_template_is_for_admins_only(app, client):
    response = client.get("/admin/roster/template.csv")
    assert response.status_code in (302, 303) and "/admin/login" in response.headers["Location"]


def test_the_done_page_offers_the_teachers_sheet_as_sensei(app, svc, fresh_school,
                                                          make_account):
    from tests.admin import pdf_layout

    c, _ = _signed_in(app, make_account, fresh_school)
    text = _csv(fresh_school.code, [("p1", "一郎", "2", "1", "児童"),
                                    ("tt1", "田中 先生", "2", "1", "教員")])
    preview = _upload(c, text.encode(), "t.csv").get_data(as_text=True)
    done = c.post("/admin/roster/apply", data={"csrf_token": form_token(c, "/admin/roster"),
                                               "preview_id": hidden(preview, "preview_id")})
    page = done.get_data(as_text=True)
    sheets = dict((html_lib.unescape(label).strip(), html_lib.unescape(href)) for href, label
                  in re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', page))
    assert f"{fresh_school.code} 先生" in sheets and f"{fresh_school.code} 2年 1組" in sheets
    assert not any(label.endswith("年 組") for label in sheets)
    teachers = pdf_layout.page_text(c.get(sheets[f"{fresh_school.code} 先生"]).data)
    assert len(teachers) == 1 and "tt1" in teachers[0] and "p1" not in teachers[0]
    pupils = pdf_layout.page_text(c.get(sheets[f"{fresh_school.code} 2年 1組"]).data)
    assert len(pupils) == 1 and "p1" in pupils[0] and "tt1" not in pupils[0]


def test_the_preview_in_english(app, fresh_school, make_account):
    c, _ = _signed_in(app, make_account, fresh_school)
    text = _csv(fresh_school.code, [("en1", "山田 太郎", "5", "2", "児童"),
                                    ("en2", "鈴木 一郎", "5", "2", "教員")])
    page = _upload(c, text.encode(), "m.csv", path="/admin/roster?lang=en")
    rows = _rows(page.get_data(as_text=True))
    assert "Grade 5, Class 2" in rows["en1"] and "Student" in rows["en1"]
    assert "Teacher" in rows["en2"] and "Grade" not in rows["en2"]
    assert "What the import will write" in page.get_data(as_text=True)
