"""Kanji a 4th-grader has not learnt carry furigana on the student's pages.

The list is the 学年別漢字配当表, grades 1 to 4 (tests/data/kyoiku_kanji_grade1_4.txt).
Two checks read the pages: every page of the journeys, rendered in Japanese
(tests/i18n/student_pages.py), with everything a reader sees or a screen reader says
(tests/i18n/visible_text.py): the titles, the buttons, the form labels, the words the views
fill in; and every sentence of those pages' templates and code, so that a branch the walk
did not take (a rare error) is read too. The same rendered pages are read for full-width
punctuation and, where a student is spoken to, for one register (「〜してね」).
"""

from __future__ import annotations

import re

import pytest
from flask import template_rendered

from tests.card.helpers import Card
from tests.i18n.guardian_pages import guardian_journey
from tests.i18n.student_pages import (
    GUARDIAN_CODE,
    GUARDIAN_PAGES,
    HELP_PAGES,
    STUDENT_CODE,
    STUDENT_PAGES,
    Crawl,
    card_journey,
    card_required_journey,
    other_pages,
    password_journey,
)
from tests.i18n.visible_text import (
    HALF_WIDTH_AFTER_JAPANESE,
    KANJI,
    kanji_by_grade,
    known_kanji,
    read,
    sentences_of,
)

RUBY = re.compile(r"<ruby>[^<]*<rt>[^<]*</rt></ruby>")
# Included by the pages, never rendered on their own.
MACROS = {"_card_messages.html"}


# ----------------------------------------------------------------------------- the list
def test_the_list_is_the_2020_table_for_grades_one_to_four():
    grades = kanji_by_grade()
    assert {grade: len(kanji) for grade, kanji in grades.items()} == {
        1: 80, 2: 160, 3: 200, 4: 202}
    every = "".join(grades.values())
    assert len(set(every)) == len(every) == 642, "a kanji is listed twice"
    assert all(KANJI.fullmatch(k) for k in every)
    # The 2020 revision: the prefectures' kanji (and 賀群徳富城) came into grade 4, and
    # 囲 胃 腸 (among others) went up to grades 5 and 6.
    assert set("茨城栃木群馬埼玉岐阜滋賀大阪奈良鹿児島沖縄") <= set(every)
    assert set("茨媛岡潟岐熊香佐埼崎滋鹿縄井沖栃奈梨阪阜賀群徳富城") <= set(grades[4])
    assert not set("囲紀喜救型航告殺士史象賞貯停堂得毒費粉脈歴胃腸") & set(every)


def test_the_reader_sees_what_a_reader_sees():
    """Kanji outside a ruby base are found in text, titles, buttons, alt texts and in
    card.js's sentences; the readings themselves and the scripts are not read."""
    known = known_kanji()
    page = read(
        '<html><head><title>確認</title></head><body>'
        '<p>この<ruby>確認<rt>かくにん</rt></ruby>は<b>大丈夫</b></p>'
        '<img alt="認証"><input type="submit" value="許可"><input type="text" value="期限">'
        '<div data-msg-a="&lt;ruby&gt;暗証&lt;rt&gt;あんしょう&lt;/rt&gt;&lt;/ruby&gt;の期限">'
        '</div><p>&lt;ruby&gt;状態&lt;rt&gt;じょうたい&lt;/rt&gt;&lt;/ruby&gt;</p>'
        '<select><option>北海道</option></select><script>var 漢 = "難";</script>'
        '<ruby>漢字<rt>漢じ</rt></ruby></body></html>')
    found = [line.split(" in ")[0] for line in page.hard_kanji(known)]
    assert found == ["確認", "丈", "認証", "許可", "限", "状態"], found
    assert page.problems == ["a reading that is not kana: '漢じ'"]
    assert "この確認は大丈夫" in page.text() and "かくにん" not in page.text()
    assert read("<title><ruby>確認<rt>かくにん</rt></ruby></title>").problems


# ----------------------------------------------------------------------------- the pages
@pytest.fixture(scope="module")
def pages(app, card_app, school, test_pki, card_keys):
    """Every page of the journeys, each rendered once (the walk takes a few seconds)."""
    from idp.jpki.testing.testpki import issue_user_cert

    def new_card() -> Card:
        issued = issue_user_cert(test_pki.root, key=card_keys.get())
        return Card(issued.certificate, issued.private_key)

    crawl = Crawl(app, card_app, school.code, school.id, new_card)
    templates: set[str] = set()

    def seen(sender, template, context, **extra):
        templates.add(template.name)

    template_rendered.connect(seen)
    try:
        password_journey(crawl)
        card_journey(crawl)
        card_required_journey(crawl)
        guardian_journey(crawl)
        other_pages(crawl)
    finally:
        template_rendered.disconnect(seen)
    missed = set(STUDENT_PAGES + GUARDIAN_PAGES + HELP_PAGES) - MACROS - templates
    assert not missed, f"no journey renders {sorted(missed)}: add it to student_pages.py"
    return crawl.pages


@pytest.fixture(scope="module")
def card_keys():
    from idp.jpki.testing.testpki import generate_rsa_key

    class Keys:
        key = generate_rsa_key(2048)

        def get(self):
            return self.key

    return Keys()


def _students_reading(pages) -> list[tuple[str, str]]:
    """(page, html) of what a student reads: the student's pages and, of the card app's
    help page, the part a student is sent to (the tablet's code)."""
    read_by_students = [(p.name, p.html) for p in pages if p.audience == "student"]
    for page in pages:
        if page.audience == "helper":
            tablet = re.search(r'<section id="help-tablet">.*?</section>', page.html, re.S)
            assert tablet, "the help page has no tablet section"
            read_by_students.append((page.name + " #help-tablet", tablet.group(0)))
    return read_by_students


def test_kanji_beyond_the_4th_grade_have_furigana_on_every_page(pages):
    known = known_kanji()
    wrong = []
    for page in pages:
        reading = read(page.html)
        wrong += [f"{page.name}: {found}" for found in reading.hard_kanji(known)]
        wrong += [f"{page.name}: {problem}" for problem in reading.problems]
    assert len(pages) > 40
    assert not wrong, "kanji without furigana:\n" + "\n".join(sorted(set(wrong)))


def test_japanese_punctuation_on_every_page(pages):
    wrong = sorted({f"{page.name}: {line.strip()[:80]!r}" for page in pages
                    for line in read(page.html).text().splitlines()
                    if HALF_WIDTH_AFTER_JAPANESE.search(line)})
    assert not wrong, "half-width ? ! or () in Japanese:\n" + "\n".join(wrong)


def test_one_register_on_every_page_a_student_reads(pages):
    texts = [(name, read(html).text()) for name, html in _students_reading(pages)]
    assert sum("てね" in text for _, text in texts) > 10, "is the scan reading the pages?"
    polite = sorted({f"{name}: {line.strip()[:80]!r}" for name, text in texts
                     for line in text.splitlines() if "ください" in line})
    assert not polite, "「ください」 where a student is spoken to:\n" + "\n".join(polite)


# ----------------------------------------------------------------------------- the sentences
def test_every_sentence_of_those_pages_has_its_furigana():
    known = known_kanji()
    sources = STUDENT_PAGES + GUARDIAN_PAGES + HELP_PAGES + STUDENT_CODE + GUARDIAN_CODE
    sentences = [s for source in sources for s in sentences_of(source)]
    assert len(sentences) > 300, "the extraction found almost nothing"
    wrong = []
    for where, text in sentences:
        hard = [k for k in KANJI.findall(RUBY.sub("", text)) if k not in known]
        if hard:
            wrong.append(f"{where}: {''.join(hard)} in {text[:70]!r}")
    assert not wrong, "kanji without furigana:\n" + "\n".join(wrong)
