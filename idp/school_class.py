"""A student's grade and class as a school writes them: the one home for 「5年 1組」.

The roster stores a numbered grade as 「5」 and a numbered class as 「1」 (idp.admin.roster
strips a typed 「5年」「1組」), and the pages, the slips and the PDFs add 年 and 組 back. Only to
those: a class a school names in words (「ひまわり学級」, 「さくら」) or a grade that is a word
(「年長」) is already what the school calls it, and 「ひまわり学級組」「年長年」 read wrong.
Pure and Flask-free, like idp.japan_time: the caller passes the language (the first-password
slips are always Japanese; a page passes its own).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# A number (1, 12, or in kanji: 一, 十二), or one letter, kana or kanji (A, い, イ, 松):
# what a school puts 組 after. Full-width digits and letters are folded first (NFKC).
_NUMBER = re.compile(r"^(?:[0-9]+|[一二三四五六七八九十]+)$")
_ONE_LETTER = re.compile(r"^(?:[A-Za-z]|[\u3041-\u3096\u30a1-\u30fa]|[\u4e00-\u9fff])$")


def _folded(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "").strip()


def takes_kumi(class_name: str | None) -> bool:
    """Whether 組 follows this class name: a number or a single letter/kana/kanji."""
    klass = _folded(class_name)
    return bool(_NUMBER.match(klass) or _ONE_LETTER.match(klass))


def takes_nen(grade: str | None) -> bool:
    """Whether 年 follows this grade: only a number (「年長」 is already a word)."""
    return bool(_NUMBER.match(_folded(grade)))


def grade_words(grade: str | None, lang: str = "ja") -> str:
    """「5年」 / "Grade 5"; a word grade as written; "" for none."""
    return _counted(grade, takes_nen, "Grade", "年", lang)


def class_only_words(class_name: str | None, lang: str = "ja") -> str:
    """「1組」 / "Class 1"; a named class (「ひまわり学級」) as written; "" for none."""
    return _counted(class_name, takes_kumi, "Class", "組", lang)


def _counted(value: str | None, takes_counter: Callable[[str], bool], english: str,
             japanese: str, lang: str) -> str:
    value = (value or "").strip()
    if not value or not takes_counter(value):
        return value
    return f"{english} {value}" if lang == "en" else f"{value}{japanese}"


def class_words(grade: str | None, class_name: str | None, lang: str = "ja") -> str:
    """「5年 1組」, 「5年 ひまわり学級」, 「ひまわり学級」 ("Grade 5, Class 1"); "" for neither."""
    parts = [p for p in (grade_words(grade, lang), class_only_words(class_name, lang)) if p]
    return (", " if lang == "en" else " ").join(parts)
