"""The teacher's paper: first-password slips as they print (ten an A4 page, no text on text,
the Japanese font embedded, the QR code opens the sign-in page) and one slip printed again
with a new first password (page, API, CLI), never for another school's pupil."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from reportlab.lib.pagesizes import A4
from sqlalchemy import select

from idp.admin import sheets
from tests.admin import pdf_layout
from tests.admin.conftest import admin_sign_in, form_token

ISSUER = "https://mynagate.minato-city.example.jp"
LONG_SCHOOL = "みなと市立ひかりの丘こども未来義務教育学校 前期課程 分校"


def _pupil(n: int, **fields) -> dict[str, str]:
    entry = {"school_code": "S1", "school_name": "みなと市立ひかり小学校", "grade": "5",
             "class_name": "2", "role": "student", "login_id": f"h{n:03d}",
             "display_name": f"山田 花子{n}", "kana_family_name": "やまだ",
             "kana_given_name": "はなこ", "password": f"ab{n:02d}-efgh-jkmn"}
    entry.update(fields)
    return entry


def _cells() -> list[tuple[float, float, float, float]]:
    """The slips' rectangles in pdfplumber's coordinates (top-left origin, points)."""
    width, height = A4
    slip_w = (width - 2 * sheets.MARGIN) / sheets.COLUMNS
    slip_h = (height - 2 * sheets.MARGIN - sheets.HEADER) / sheets.ROWS
    first = sheets.MARGIN + sheets.HEADER
    return [(sheets.MARGIN + c * slip_w, first + r * slip_h,
             sheets.MARGIN + (c + 1) * slip_w, first + (r + 1) * slip_h)
            for r in range(sheets.ROWS) for c in range(sheets.COLUMNS)]


def _inside(box: pdf_layout.Box, cell: tuple[float, float, float, float]) -> bool:
    x0, top, x1, bottom = cell
    return x0 < box.x0 and box.x1 < x1 and top < box.top and box.bottom < bottom


def test_a_class_prints_ten_slips_a_page_without_text_on_text():
    pupils = [_pupil(n) for n in range(23)]
    # The worst cases: a long school name, a long name, a teacher with a grade, no kana.
    pupils[3] = _pupil(3, display_name="寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末")
    staff = [_pupil(90, role="teacher", grade="5", class_name="2", login_id="t-suzuki",
                    display_name="鈴木 一郎", kana_family_name="", kana_given_name="",
                    school_name=LONG_SCHOOL)]
    pdf = sheets.first_password_pdf(pupils + staff, issuer=ISSUER)
    per_page = pdf_layout.pages(pdf)
    texts = pdf_layout.page_text(pdf)
    assert len(per_page) == 4  # 10 + 10 + 3 pupils, then the teachers' own page
    for page_number, boxes in enumerate(per_page, start=1):
        assert pdf_layout.overlapping(boxes) == [], f"page {page_number}"
        # Below the title and the note, every character sits inside one slip: none
        # crosses a cut line.
        body = [b for b in boxes if b.top > sheets.MARGIN + sheets.HEADER - 1]
        assert all(any(_inside(b, cell) for cell in _cells()) for b in body), page_number
    first = texts[0]
    assert "みなと市立ひかり小学校 5年 2組 はじめてのパスワード" in first
    assert first.count("やまだ はなこ") == 10 and first.count(ISSUER + "/account/") == 10
    for n in range(10):
        assert f"h{n:03d}" in first and f"ab{n:02d}-efgh-jkmn" in first
    assert sheets.CHANGE_AT_FIRST_SIGN_IN in first
    assert "寿限無寿限無" in first  # shrunk or cut to fit, never over the QR code
    assert texts[2].count("ID") == 3
    teacher = texts[3]
    assert "先生" in teacher and "5年" not in teacher and "2組" not in teacher
    assert "t-suzuki" in teacher


def test_every_font_is_embedded_as_a_truetype_subset():
    pdf = sheets.first_password_pdf([_pupil(1)], issuer=ISSUER)
    table = pdf_layout.fonts(pdf)
    assert table and all(f["emb"] == "yes" and f["sub"] == "yes" for f in table), table
    assert any("IPAex" in f["name"] for f in table)  # the Japanese glyphs travel with it
    assert {f["type"] for f in table} == {"TrueType"}


def test_the_printed_page_shows_qr_codes_that_open_the_sign_in_page():
    pdf = sheets.first_password_pdf([_pupil(n) for n in range(10)], issuer=ISSUER)
    png = pdf_layout.render(pdf, page=1)
    assert png.startswith(b"\x89PNG")
    assert pdf_layout.qr_codes(png) == [ISSUER + "/account/"] * 10


def test_the_overlap_check_finds_text_on_text():
    """The check above can fail: two strings drawn at one spot are caught."""
    import io

    from reportlab.pdfgen import canvas

    font = sheets.fonts().japanese
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, initialFontName=font)
    pdf.setFont(font, 14)
    pdf.drawString(100, 700, "みなと市立ひかり小学校 5年 2組")
    pdf.drawString(180, 703, "先生へ: 点線で切って")
    pdf.save()
    assert pdf_layout.overlapping(pdf_layout.pages(buffer.getvalue())[0])


def test_the_sign_in_address_on_the_slip_asks_to_sign_in(client):
    page = client.get("/account/")
    assert page.status_code in (302, 303) and "/login" in page.headers["Location"]


# ----------------------------------------------------------------------------- reprint
def _slip_text(pdf: bytes) -> str:
    return "\n".join(pdf_layout.page_text(pdf))


def _password_on(pdf: bytes) -> str:
    match = re.search(r"\b([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})\b", _slip_text(pdf))
    assert match, _slip_text(pdf)
    return match.group(1)


def _events(svc, event: str, account_id: str):
    from idp.store.models import AuditEvent

    with svc.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == event,
                                                       AuditEvent.account_id == account_id)))


def _account(svc, account_id: str):
    from idp.store.models import Account

    with svc.db.session() as s:
        row = s.get(Account, account_id)
        s.expunge(row)
        return row


def test_a_school_admin_reprints_a_pupils_slip_and_the_old_password_stops(
        app, svc, school, make_account, make_student, browser):
    from idp.signin.passwords import verify_password
    from idp.store.models import Account

    student = make_student()
    with svc.db.session() as s:
        row = s.get(Account, student.id)
        row.kana_family_name, row.kana_given_name = "やまだ", "はなこ"
    # The pupil is signed in on a tablet with the password they chose.
    assert browser.password_login(browser.c.get("/login"), student).status_code == 303
    assert browser.c.get("/account/").status_code == 200
    admin = make_account("school_admin")
    c = app.test_client()
    admin_sign_in(c, admin)
    page = c.get(f"/admin/accounts/{student.id}").get_data(as_text=True)
    assert 'id="account-slip"' in page
    slip = c.post(f"/admin/accounts/{student.id}/slip",
                  data={"csrf_token": form_token(c, f"/admin/accounts/{student.id}")})
    assert slip.status_code == 200 and slip.mimetype == "application/pdf"
    assert slip.headers["Cache-Control"] == "no-store"
    text = _slip_text(slip.data)
    assert "山田 花子 さん" in text and "やまだ はなこ" in text and student.login_id in text
    assert "5年 2組" in text and school.name in text
    new = _password_on(slip.data)
    after = _account(svc, student.id)
    assert verify_password(after.password_hash, new)
    assert not verify_password(after.password_hash, student.password)  # the old one stops
    assert after.must_change_password is True
    [event] = _events(svc, "account.slip_reprinted", student.id)
    assert event.actor == admin.id and event.school_id == school.id
    # Whoever held the old password is signed out everywhere.
    assert browser.c.get("/account/").status_code in (302, 303)
    again = c.post(f"/admin/accounts/{student.id}/slip",
                   data={"csrf_token": form_token(c, f"/admin/accounts/{student.id}")})
    assert not verify_password(_account(svc, student.id).password_hash, new)  # reprinted: gone
    assert _password_on(again.data) != new


def test_a_school_admin_cannot_reprint_another_schools_pupil(
        app, svc, other_school, make_account, make_student, token_of):
    student = make_student()  # in the `school` fixture's school
    before = _account(svc, student.id).password_hash
    outsider = make_account("school_admin", in_school=other_school)
    c = app.test_client()
    admin_sign_in(c, outsider)
    token = form_token(c, "/admin/roster")
    refused = c.post(f"/admin/accounts/{student.id}/slip", data={"csrf_token": token})
    assert refused.status_code == 403
    api = c.post(f"/api/admin/accounts/{student.id}/slip", headers=token_of(outsider))
    assert api.status_code == 403 and api.get_json()["error"]
    assert _account(svc, student.id).password_hash == before
    assert _events(svc, "account.slip_reprinted", student.id) == []


def test_the_reprint_needs_the_forms_token(app, svc, make_account, make_student):
    student = make_student()
    before = _account(svc, student.id).password_hash
    admin = make_account("school_admin")
    c = app.test_client()
    admin_sign_in(c, admin)
    assert c.post(f"/admin/accounts/{student.id}/slip", data={}).status_code == 400
    assert _account(svc, student.id).password_hash == before


def test_the_api_reprints_a_slip_but_not_for_an_admin(client, svc, make_account,
                                                      make_student, token_of):
    from idp.signin.passwords import verify_password

    student = make_student()
    admin = make_account("school_admin")
    response = client.post(f"/api/admin/accounts/{student.id}/slip", headers=token_of(admin))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert verify_password(_account(svc, student.id).password_hash,
                           _password_on(response.data))
    boss = make_account("platform_admin")
    colleague = make_account("school_admin")
    refused = client.post(f"/api/admin/accounts/{colleague.id}/slip", headers=token_of(boss))
    assert refused.status_code == 400 and refused.get_json()["error"] == "not_slip_role"
    assert client.post("/api/admin/accounts/nope/slip",
                       headers=token_of(boss)).status_code == 404


def test_the_cli_writes_one_slip(app, svc, make_student, tmp_path, monkeypatch):
    from idp.cli import Ctx, cli
    from idp.cli import roster as roster_cli
    from idp.signin.passwords import verify_password

    roster_cli.register(cli)
    monkeypatch.setattr(Ctx, "app", property(lambda self: app))
    student = make_student()
    out = tmp_path / "slip.pdf"
    result = CliRunner().invoke(cli, ["roster", "slip", "--school", student.school_code,
                                      "--login", student.login_id, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert verify_password(_account(svc, student.id).password_hash,
                           _password_on(out.read_bytes()))
    [event] = _events(svc, "account.slip_reprinted", student.id)
    assert event.actor == "cli"
    missing = CliRunner().invoke(cli, ["roster", "slip", "--school", student.school_code,
                                       "--login", "nobody-here", "-o", str(out)])
    assert missing.exit_code != 0 and "no account" in missing.output
    assert "Traceback" not in missing.output


def test_without_a_japanese_font_nothing_changes(app, svc, make_account, make_student,
                                                 token_of, monkeypatch):
    student = make_student()
    before = _account(svc, student.id).password_hash
    sheets.fonts.cache_clear()
    monkeypatch.setattr(sheets, "JAPANESE_FONTS", ())
    monkeypatch.setenv("IDP_SHEET_FONT", "/nonexistent/font.ttf")
    try:
        admin = make_account("school_admin")
        response = app.test_client().post(f"/api/admin/accounts/{student.id}/slip",
                                          headers=token_of(admin))
        assert response.status_code == 503
        assert response.get_json()["error"] == "sheet_font_missing"
        assert _account(svc, student.id).password_hash == before
    finally:
        sheets.fonts.cache_clear()


@pytest.mark.parametrize("entry,label", [
    ({"role": "teacher", "grade": "3", "class_name": "1"}, "先生"),
    ({"role": "student", "grade": "3", "class_name": "1"}, "3年 1組"),
    ({"role": "student", "grade": "", "class_name": ""}, ""),
    # A class the school names in words is printed as named: not 「ひまわり学級組」.
    ({"role": "student", "grade": "3", "class_name": "ひまわり学級"}, "3年 ひまわり学級"),
    ({"role": "student", "grade": "", "class_name": "ひまわり学級"}, "ひまわり学級"),
    ({"role": "student", "grade": "年長", "class_name": "さくら"}, "年長 さくら"),
    ({"role": "student", "grade": "4", "class_name": "B"}, "4年 B組"),
])
def test_class_words(entry, label):
    assert sheets.class_text(entry) == label


def test_the_image_carries_the_font_the_slips_embed():
    from pathlib import Path

    dockerfile = (Path(__file__).parents[2] / "docker" / "Dockerfile").read_text()
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]  # the stage that serves
    assert "fonts-ipaexfont-gothic" in runtime and "fonts-dejavu-core" in runtime
    # Where Debian's package puts it is the first place the slips look.
    assert sheets.JAPANESE_FONTS[0] == "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"


def test_a_long_address_is_shrunk_never_cut():
    long_issuer = "https://mynagate.board-of-education.minato-city.example.jp"
    pdf = sheets.first_password_pdf([_pupil(1)], issuer=long_issuer)
    text = pdf_layout.page_text(pdf)[0]
    assert long_issuer + "/account/" in text and "…" not in text
    [boxes] = pdf_layout.pages(pdf)
    assert pdf_layout.overlapping(boxes) == []
    assert pdf_layout.qr_codes(pdf_layout.render(pdf, page=1)) == [long_issuer + "/account/"]
