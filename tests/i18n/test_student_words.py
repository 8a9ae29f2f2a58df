"""The Japanese a 10-year-old reads on the student's pages: furigana on hard kanji (and none
on the English pages), one register (「〜してね」) on every page of the journey, Japanese
punctuation, and the line-breaking CSS."""

from __future__ import annotations

import re

from tests.conftest import ROOT

TEMPLATES = ROOT / "idp" / "templates"
STUDENT_PAGES = ("login.html", "card_login.html", "_card_messages.html", "consent.html",
                 "error.html", "logged_out.html", "logout_confirm.html",
                 "graduate_refused.html", "link_card.html", "card_pair.html",
                 "account/home.html", "account/password.html", "account/reset.html",
                 "account/reset_done.html", "account/card_password.html",
                 "account/first_password.html")
MSGID = re.compile(r"""_\(\s*(["'])(.*?)\1""", re.S)
KANA_OR_KANJI = "\u3040-\u30ff\u4e00-\u9fff"
HALF_WIDTH_AFTER_JAPANESE = re.compile(f"[{KANA_OR_KANJI}][?(]|[(][{KANA_OR_KANJI}]")


def _japanese_of(page: str) -> list[str]:
    return [m.group(2) for m in MSGID.finditer((TEMPLATES / page).read_text("utf-8"))]


def test_one_register_on_the_student_journey():
    """「〜してね」 everywhere a student reads; a 「〜してください」 slipped in mixes registers."""
    polite = [(page, text) for page in STUDENT_PAGES for text in _japanese_of(page)
              if "ください" in text]
    casual = [page for page in STUDENT_PAGES for text in _japanese_of(page) if "てね" in text]
    assert casual, "the scan found no 「てね」: is the pattern broken?"
    assert not polite, f"「ください」 on a student page: {polite}"


# The forms whose labels and buttons appear on those pages.
STUDENT_FORMS = ("idp/account/forms.py", "idp/auth/forms.py")
LAZY_MSGID = re.compile(r"""_l\(\s*(["'])(.*?)\1""", re.S)


def test_japanese_punctuation_is_full_width():
    texts = [(page, text) for page in STUDENT_PAGES for text in _japanese_of(page)]
    texts += [(form, m.group(2)) for form in STUDENT_FORMS
              for m in LAZY_MSGID.finditer((ROOT / form).read_text("utf-8"))]
    assert any(form == STUDENT_FORMS[0] for form, _ in texts)  # the scan reads the forms
    wrong = [(page, text) for page, text in texts if HALF_WIDTH_AFTER_JAPANESE.search(text)]
    assert not wrong, f"half-width ? or () in Japanese: {wrong}"


def test_lines_break_between_phrases():
    css = (ROOT / "idp" / "static" / "style.css").read_text("utf-8")
    assert re.search(r":lang\(ja\)\s*\{[^}]*word-break:\s*auto-phrase", css)
    assert re.search(r":lang\(ja\)\s*\{[^}]*line-break:\s*strict", css)


def test_furigana_in_japanese_and_none_in_english(browser, rp, make_student, svc):
    from idp.store.models import Account

    student = make_student()
    with svc.db.session() as db:
        db.get(Account, student.id).display_name = "<b>太郎</b>"
    browser.sign_in_and_authorize(rp, student)
    japanese = browser.c.get("/account/?lang=ja").get_data(as_text=True)
    assert "<ruby>登録<rt>とうろく</rt></ruby>" in japanese
    # The catalog's markup is trusted; the student's name inside a sentence is not.
    assert "<b>太郎</b>" not in japanese and "&lt;b&gt;太郎&lt;/b&gt;" in japanese
    english = browser.c.get("/account/?lang=en").get_data(as_text=True)
    assert "<ruby>" not in english and "<rt>" not in english


def test_login_page_furigana_only_in_japanese(client, make_rp):
    page = client.get("/login?lang=ja").get_data(as_text=True)
    assert "学校の先生に聞いてね。" in page
    assert "<ruby>" not in client.get("/login?lang=en").get_data(as_text=True)


def test_the_sentences_the_student_pages_get_from_code_keep_the_register():
    """Error sentences come from Python (the password page, the my page) and join the
    template's Japanese on the same page."""
    from idp.account.my_page_views import PASSWORD_ERRORS

    polite = [str(text) for text in PASSWORD_ERRORS.values() if "ください" in str(text)]
    assert not polite, polite
