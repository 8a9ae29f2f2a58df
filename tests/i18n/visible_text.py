"""What a reader of a page sees or hears, for the word checks on the student's pages.

The text outside ``<script>``, ``<style>`` and the readings (``<rt>``, ``<rp>``), each piece
marked when it sits in a ruby base; the attributes a screen reader reads (``alt``,
``aria-label``, ``placeholder``, ``title``) and a button's ``value``; and the sentences
card.js shows (``data-msg-*``), which carry furigana as ``<ruby>`` markup of their own.
``<option>`` text is left out: the school list is every school's own name (data). And the
sentences of a template or a module as the catalog extraction finds them (:func:`sentences_of`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file

from tests.conftest import ROOT

KANJI_LIST = ROOT / "tests" / "data" / "kyoiku_kanji_grade1_4.txt"
# CJK unified ideographs, extension A and the compatibility block. 々 is not among them.
KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
KANA_OR_KANJI = "\u3040-\u30ff\u4e00-\u9fff"
HALF_WIDTH_AFTER_JAPANESE = re.compile(f"[{KANA_OR_KANJI}][?!()]|[()][{KANA_OR_KANJI}]")
SPOKEN_ATTRIBUTES = ("alt", "aria-label", "placeholder", "title")
BUTTON_TYPES = ("submit", "button", "reset")
SKIPPED = ("script", "style", "rt", "rp", "option")
# Elements inside a line of text: their edges do not separate two sentences.
INLINE = {"a", "abbr", "b", "br", "code", "em", "i", "kbd", "label", "rb", "rp", "rt", "ruby",
          "small", "span", "strong", "time"}


def sentences_of(path: str) -> list[tuple[str, str]]:
    """(where, msgid) of every sentence in a template or a module."""
    full = ROOT / path if path.startswith("idp/") else ROOT / "idp" / "templates" / path
    method = "python" if full.suffix == ".py" else "jinja2"
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    return [(f"{path}:{line}", message if isinstance(message, str) else message[0])
            for line, message, _, _ in extract_from_file(method, str(full), keywords=keywords)]


def kanji_by_grade() -> dict[int, str]:
    grades: dict[int, str] = {}
    for line in KANJI_LIST.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            grade, kanji = line.split()
            grades[int(grade)] = kanji
    return grades


def known_kanji() -> frozenset[str]:
    return frozenset("".join(kanji_by_grade().values()))


@dataclass
class Piece:
    text: str
    ruby: bool  # inside a ruby base: its kanji have a reading
    where: str  # "text", or the attribute it came from


@dataclass
class Reading:
    pieces: list[Piece] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Everything read, ruby bases included, readings left out: a line per block of the
        page and per attribute."""
        out, where = [], "text"
        for piece in self.pieces:
            if piece.where != where:
                out.append("\n")
                where = piece.where
            out.append(piece.text)
        return "".join(out)

    def hard_kanji(self, known: frozenset[str]) -> list[str]:
        """Each piece with a kanji beyond the list and no reading, with the kanji."""
        found = []
        for piece in self.pieces:
            hard = "".join(k for k in KANJI.findall(piece.text) if k not in known)
            if hard and not piece.ruby:
                found.append(f"{hard} in {piece.where}: {piece.text.strip()[:80]!r}")
        return found


class _Reader(HTMLParser):
    def __init__(self, reading: Reading) -> None:
        super().__init__(convert_charrefs=True)
        self.reading = reading
        self.skipping: list[str] = []
        self.ruby = 0
        self.ruby_has_reading: list[bool] = []
        self.in_title = False
        self.rt_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.in_title:
            # A browser shows markup in <title> as it is: a reading cannot go there.
            self.reading.problems.append(f"<{tag}> inside <title>")
        values = dict(attrs)
        if tag not in INLINE:
            self.reading.pieces.append(Piece("\n", False, "text"))
        for name, value in attrs:
            if value and (name in SPOKEN_ATTRIBUTES or (
                    name == "value" and tag in ("input", "button")
                    and values.get("type") in BUTTON_TYPES)):
                self.reading.pieces.append(Piece(value, False, f"{tag}[{name}]"))
            elif value and name.startswith("data-msg-"):
                inner = read(value)
                self.reading.problems.extend(inner.problems)
                self.reading.pieces.extend(Piece(p.text, p.ruby, f"[{name}]")
                                           for p in inner.pieces)
        if tag in SKIPPED:
            self.skipping.append(tag)
            self.rt_text = ""
        elif tag == "ruby":
            self.ruby += 1
            self.ruby_has_reading.append(False)
        elif tag == "title":
            self.in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "rt" and self.skipping and self.ruby_has_reading:
            self.ruby_has_reading[-1] = True
            if not self.rt_text.strip() or KANJI.search(self.rt_text):
                self.reading.problems.append(f"a reading that is not kana: {self.rt_text!r}")
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()
        elif tag == "ruby" and self.ruby:
            self.ruby -= 1
            if not self.ruby_has_reading.pop():
                self.reading.problems.append("a <ruby> without <rt>")
        elif tag == "title":
            self.in_title = False
        if tag not in INLINE:
            self.reading.pieces.append(Piece("\n", False, "text"))

    def handle_data(self, data: str) -> None:
        if self.skipping and self.skipping[-1] == "rt":
            self.rt_text += data
        if not self.skipping:
            self.reading.pieces.append(Piece(data, self.ruby > 0, "text"))


def read(html: str) -> Reading:
    reading = Reading()
    reader = _Reader(reading)
    reader.feed(html)
    reader.close()
    return reading
