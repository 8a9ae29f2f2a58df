"""What a newcomer to the admin pages ran into, walking them in Chromium (issue 12), each
held here: refusals in the admin's words with the way back, roles and times a school reads
(Japanese, Japan time), school codes that cannot break an address, 「5年」「1組」 in a roster,
the app form's errors in Japanese with the value that broke the rule, and an audit search
that says why it cannot be done instead of quietly showing everything."""

from __future__ import annotations

import html as html_lib
import io
import re
from datetime import datetime

import pdfplumber
import pytest

from tests.admin.conftest import admin_sign_in, form_token
from tests.admin.test_roster import _csv, _upload
from tests.admin.test_roster_preview import _rows
from tests.conftest import unique

# The student pages' generic error and werkzeug's English: never on an admin page.
STUDENT_ERROR = "アプリからのおねがいが正しくありません"
WERKZEUG_403 = "You don't have the permission"


def _signed_in(app, admin):
    client = app.test_client()
    admin_sign_in(client, admin)
    return client


def _text(html: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


# ----------------------------------------------------------------------------- refusals
def test_a_teacher_on_an_admin_page_is_told_why_and_led_back_to_card_linking(
        app, make_account):
    teacher = _signed_in(app, make_account("teacher"))
    page = teacher.get("/admin/")
    html = page.get_data(as_text=True)
    assert page.status_code == 403
    assert "あなたの役割では使えません" in html
    assert STUDENT_ERROR not in html and WERKZEUG_403 not in html
    assert re.search(r'id="admin-error-back" href="/admin/link-card"', html)


def test_a_missing_thing_is_a_404_in_admin_words_with_the_way_home(app, platform_admin):
    admin = _signed_in(app, platform_admin)
    page = admin.get("/admin/clients/no-such-app")
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and "見つかりません。" in html
    assert STUDENT_ERROR not in html
    assert re.search(r'id="admin-error-back" href="/admin/"', html)


def test_an_expired_slip_sheet_says_how_to_print_a_new_slip(app, platform_admin):
    admin = _signed_in(app, platform_admin)
    page = admin.get("/admin/roster/sheets/gone.pdf")
    html = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "取り込みから30分で消えます" in html and "新しいパスワードで用紙を印刷する" in html


def test_a_json_caller_of_an_admin_page_still_gets_json(app, make_account):
    teacher = _signed_in(app, make_account("teacher"))
    page = teacher.get("/admin/", headers={"Accept": "application/json"})
    assert page.status_code == 403 and page.get_json()["error"] == "forbidden"


# ----------------------------------------------------------------------------- accounts
def test_roles_and_classes_read_in_japanese(app, svc, new_school, make_account):
    from idp.store.models import Account

    school = new_school("役割小学校")
    admin = make_account("school_admin", in_school=school)
    with svc.db.session() as db:
        pupil = Account(school_id=school.id, login_id=unique("p"), display_name="森 ゆい",
                        role="student", grade="5", class_name="2")
        db.add(pupil)
    client = _signed_in(app, admin)
    listing = client.get("/admin/accounts", query_string={"school": school.code})
    cells = re.findall(r"<td>([^<]*)</td>", listing.get_data(as_text=True))
    assert "児童生徒" in cells and "学校の管理者" in cells
    assert not {"student", "school_admin"} & set(cells)
    one = client.get(f"/admin/accounts/{pupil.id}").get_data(as_text=True)
    assert re.search(r'id="account-role">児童生徒<', one)
    assert re.search(r'id="account-class">5年 2組<', one)
    own = client.get(f"/admin/accounts/{admin.id}").get_data(as_text=True)
    assert 'id="account-class"' not in own  # no bare " / " for someone without a class


def test_dates_on_the_account_and_token_pages_are_japan_days(app, svc, platform_admin,
                                                            make_account):
    from idp.clients.access_tokens import issue_initial_access_token
    from idp.store.models import CardBinding

    holder = make_account("student")
    # 15:30 UTC is 00:30 the next day in Japan.
    late = datetime(2031, 5, 6, 15, 30)
    with svc.db.session() as db:
        db.add(CardBinding(account_id=holder.id, issuer="CN=Test", serial=unique("s"),
                           certificate_sha256=unique("c"), status="active", not_after=late))
        row, _ = issue_initial_access_token(db, created_by=platform_admin.id, label="日付",
                                            days=7, max_uses=1, allowed_scopes=None)
        row.expires_at = late
    client = _signed_in(app, platform_admin)
    card_row = re.search(r'<tr id="card-[^"]+">(.*?)</tr>',
                         client.get(f"/admin/accounts/{holder.id}").get_data(as_text=True),
                         re.S).group(1)
    assert "2031-05-07" in card_row and "2031-05-06" not in card_row
    iats = client.get("/admin/initial-access-tokens").get_data(as_text=True)
    assert "2031-05-07 00:30" in iats and "2031-05-06 15:30" not in iats


# ----------------------------------------------------------------------------- schools
@pytest.mark.parametrize("code", ["ab c", "a/b", "学校", "x" * 65, "-lead"])
def test_a_school_code_that_would_break_an_address_is_refused(app, svc, platform_admin,
                                                              token_of, code):
    from sqlalchemy import select

    from idp.store.models import School

    client = _signed_in(app, platform_admin)
    page = client.post("/admin/schools", data={
        "csrf_token": form_token(client, "/admin/schools"), "code": code, "name": "へん"})
    assert page.status_code == 400
    assert "半角の英字・数字" in page.get_data(as_text=True) or len(code) > 64
    api = app.test_client().post("/api/admin/schools", json={"code": code, "name": "へん"},
                                 headers=token_of(platform_admin))
    assert api.status_code == 400
    with svc.db.session() as db:
        assert db.scalar(select(School).where(School.code == code)) is None


def test_a_new_school_is_confirmed_and_its_links_work(app, platform_admin):
    client = _signed_in(app, platform_admin)
    code = unique("NEW").upper()
    wide = code.translate({ord(c): ord(c) + 0xFEE0 for c in code if c != "-"})
    done = client.post("/admin/schools", data={
        "csrf_token": form_token(client, "/admin/schools"), "code": wide, "name": "新小学校"})
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="school-created"' in page and code in page  # IME full-width letters folded
    header = re.search(r'<table id="schools-table">\s*<thead><tr>(.*?)</tr>', page, re.S)
    row = re.search(rf'<tr id="school-row-{code}">(.*?)</tr>', page, re.S)
    assert header.group(1).count("<th>") == row.group(1).count("<td>")  # every column named
    age = re.search(r'href="(/admin/schools/[^"]+/guardian-age)"', row.group(1)).group(1)
    assert client.get(age).status_code == 200


# ----------------------------------------------------------------------------- roster
def test_a_roster_may_say_5nen_and_1kumi(app, svc, new_school, make_account):
    from sqlalchemy import select

    from idp.store.models import Account

    school = new_school("年組小学校")
    client = _signed_in(app, make_account("school_admin", in_school=school))
    logins = [unique("k") for _ in range(4)]
    text = _csv(school.code, [(logins[0], "一", "5年", "1組", "児童"),
                              (logins[1], "二", "５年生", "Ａ組", "児童"),
                              (logins[2], "三", "年長", "ひまわり学級", "児童"),
                              (logins[3], "四", "6", "2", "児童")])
    preview = client.post("/admin/roster", data={
        "csrf_token": form_token(client, "/admin/roster"),
        "file": (io.BytesIO(text.encode("utf-8")), "名簿.csv")},
        content_type="multipart/form-data")
    rows = _rows(preview.get_data(as_text=True))
    assert "5年 1組" in rows[logins[0]] and "5年 A組" in rows[logins[1]]
    assert "年年" not in preview.get_data(as_text=True)
    assert "組組" not in preview.get_data(as_text=True)
    # Other words are the school's own: no 年 after 「年長」, no 組 after 「ひまわり学級」.
    assert "年長 ひまわり学級" in rows[logins[2]] and "学級組" not in rows[logins[2]]
    applied = _upload(client, text.encode("utf-8"), "名簿.csv")
    assert applied.status_code == 200
    done = client.post("/admin/roster/apply", data={
        "csrf_token": form_token(client, "/admin/roster"),
        "preview_id": re.search(r'name="preview_id" type="hidden" value="([^"]+)"',
                                applied.get_data(as_text=True)).group(1)})
    links = _text(done.get_data(as_text=True).split('id="roster-sheets"', 1)[1]
                  .split("</ul>", 1)[0])
    assert f"{school.code} 5年 1組" in links and f"{school.code} 年長 ひまわり学級" in links
    assert "学級組" not in links and "長年" not in links
    sheet = re.search(r'href="([^"]+class=%E3%81%B2[^"]*)"', done.get_data(as_text=True))
    assert sheet, "no sheet link for the ひまわり学級"
    pdf = client.get(html_lib.unescape(sheet.group(1)))
    with pdfplumber.open(io.BytesIO(pdf.data)) as opened:
        title = opened.pages[0].extract_text().splitlines()[0]
    assert "年長 ひまわり学級 はじめてのパスワード" in title, title
    with svc.db.session() as db:
        stored = {a.login_id: (a.grade, a.class_name) for a in db.scalars(
            select(Account).where(Account.school_id == school.id,
                                  Account.login_id.in_(logins)))}
    assert stored[logins[0]] == ("5", "1") and stored[logins[1]] == ("5", "A")
    assert stored[logins[2]] == ("年長", "ひまわり学級")


def test_the_year_end_class_roster_reads_6nen_2kumi_too():
    from idp.admin.school_year import parse_class_roster

    rows, problems = parse_class_roster(
        "ログインID,学年,組\nhana,6年,2組\n".encode(), "S1")
    assert not problems and [(r.grade, r.class_name) for r in rows] == [("6", "2")]


# ----------------------------------------------------------------------------- apps
@pytest.mark.parametrize(("fields", "words", "value"), [
    ({"redirect_uris": "not a url"}, "リダイレクトURIが使えません。", "not a url"),
    ({"redirect_uris": "http://vendor.example/cb"}, "https:// で始まり", "http://vendor.example/cb"),
    ({"redirect_uris": "https://a.example/cb", "post_logout_redirect_uris": "ftp://a.example/"},
     "ログアウト後のURIが使えません。", "ftp://a.example/"),
    ({"redirect_uris": "https://a.example/cb", "jwks": "{not json"}, "jwks(JSON)が読めません", ""),
    ({"redirect_uris": "https://a.example/cb\nhttps://b.example/cb"},
     "セクター識別子URIが必要", ""),
    ({"redirect_uris": "https://a.example/cb", "logo_uri": "http://a.example/logo.png"},
     "ロゴのURLは https://", "http://a.example/logo.png"),
])
def test_the_app_forms_errors_are_japanese_and_name_the_value(app, platform_admin, fields,
                                                              words, value):
    client = _signed_in(app, platform_admin)
    page = client.post("/admin/clients/new", data={
        "csrf_token": form_token(client, "/admin/clients/new"), "client_name": "ドリル",
        "token_endpoint_auth_method": "client_secret_basic", "scopes": ["openid"],
        "id_token_signed_response_alg": "RS256", "required_acr": "", **fields})
    error = _text(re.search(r'<p class="error" role="alert" id="error">(.*?)</p>',
                            page.get_data(as_text=True), re.S).group(1))
    assert page.status_code == 400 and words in error and value in error
    assert not re.search(r"\b(must|need|not JSON|more than one host)\b", error), error


# ----------------------------------------------------------------------------- audit log
@pytest.mark.parametrize(("query", "words"), [
    ({"since": "2026-05-07", "until": "2026-05-01"}, "「この日まで」は"),
    ({"school": "no-such-school"}, "その学校コードの学校は登録されていません。"),
    ({"login_id": "someone"}, "学校コードも入れてください"),
])
def test_an_audit_search_that_cannot_be_done_says_so_and_shows_nothing(app, platform_admin,
                                                                       query, words):
    client = _signed_in(app, platform_admin)  # its own sign-in is a record to show
    page = client.get("/admin/audit", query_string=query)
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and words in html
    assert "<time datetime=" not in html  # no record shown as if it matched


def test_an_audit_search_with_no_match_says_so(app, platform_admin):
    client = _signed_in(app, platform_admin)
    html = client.get("/admin/audit", query_string={"event": "no.such.event"}).get_data(
        as_text=True)
    assert 'id="audit-none"' in html
    assert 'list="audit-events"' in html and '<option value="admin.login">' in html


# ----------------------------------------------------------------------------- the PDFs
def test_the_slips_say_who_made_them():
    from idp.admin.sheets import first_password_pdf

    pdf = first_password_pdf([{"login_id": "a", "password": "p-q-r", "display_name": "一",
                               "grade": "5", "class_name": "1", "school_name": "小"}],
                             issuer="https://id.example.jp")
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        assert doc.metadata["Author"] == "マイナゲート"
        assert doc.metadata["Creator"] == "マイナゲート"
