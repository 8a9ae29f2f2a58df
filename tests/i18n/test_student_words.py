"""The Japanese a 10-year-old reads on the student's pages: furigana on hard kanji (and none
on the English pages), one register (「〜してね」) on every page of the journey, Japanese
punctuation, and the line-breaking CSS."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.i18n.student_pages import (
    GUARDIAN_CODE,
    GUARDIAN_PAGES,
    HELP_PAGES,
    STUDENT_CODE,
    STUDENT_PAGES,
)
from tests.i18n.visible_text import HALF_WIDTH_AFTER_JAPANESE, sentences_of


def test_one_register_on_the_student_journey():
    """「〜してね」 everywhere a student reads; a 「〜してください」 slipped in mixes registers.
    (The sentences of every branch; test_furigana.py reads the rendered pages too.)"""
    texts = [(where, text) for source in STUDENT_PAGES + STUDENT_CODE
             for where, text in sentences_of(source)]
    polite = [(where, text) for where, text in texts if "ください" in text]
    casual = [where for where, text in texts if "てね" in text]
    assert len(casual) > 20, "the scan found almost no 「てね」: is it reading the pages?"
    assert not polite, f"「ください」 on a student page: {polite}"


def test_japanese_punctuation_is_full_width():
    """On the student's pages, the guardian's and the card app's help page, and in the
    sentences the code puts on them (the forms' labels, the errors, the scope words)."""
    texts = [(where, text) for source in STUDENT_PAGES + GUARDIAN_PAGES + HELP_PAGES
             + STUDENT_CODE + GUARDIAN_CODE for where, text in sentences_of(source)]
    assert any(where.startswith(GUARDIAN_PAGES[0]) for where, _ in texts)
    assert any(where.startswith("idp/auth/forms.py") for where, _ in texts)
    wrong = [(where, text) for where, text in texts if HALF_WIDTH_AFTER_JAPANESE.search(text)]
    assert not wrong, f"half-width ? ! or () in Japanese: {wrong}"


def test_the_punctuation_check_finds_half_width_marks_in_japanese():
    """What the punctuation checks look for: 「?」「!」「(」「)」 touching kana or kanji (a
    「（日本時間)」 with one half of each kind too), never the full-width marks, and not
    English, a placeholder or a colon."""
    wrong = ["ですか?", "できた!", "(日本時間)", "（日本時間)", "(にほん）", "ひらがな(かな"]
    right = ["ですか？", "できた！", "（日本時間）", "Japan time (JST)", "%(at)sに", "ID: 1",
             "あと2回", "番号（sub）："]
    assert [text for text in wrong if not HALF_WIDTH_AFTER_JAPANESE.search(text)] == []
    assert [text for text in right if HALF_WIDTH_AFTER_JAPANESE.search(text)] == []


def test_the_demo_apps_pages_use_japanese_punctuation():
    """The demo app is the first page a student sees in `make run`: every branch of its
    page (signed in, welcome, signed out, error) as the template's own text."""
    from idp.demo.rp import PAGE
    from tests.i18n.visible_text import read

    lines = read(PAGE).text().splitlines()
    assert any("サインインしました" in line for line in lines), "is it reading the page?"
    wrong = [line.strip() for line in lines if HALF_WIDTH_AFTER_JAPANESE.search(line)]
    assert not wrong, f"half-width punctuation in the demo app's Japanese: {wrong}"


def test_lines_break_between_phrases():
    css = (ROOT / "idp" / "static" / "style.css").read_text("utf-8")
    assert re.search(r":lang\(ja\)\s*\{[^}]*word-break:\s*auto-phrase", css)
    assert re.search(r":lang\(ja\)\s*\{[^}]*line-break:\s*strict", css)
    # A word and its furigana stay on one line.
    assert re.search(r"(^|\n)ruby\s*\{[^}]*white-space:\s*nowrap", css)


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
