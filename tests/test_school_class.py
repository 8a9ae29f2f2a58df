"""When 年 and 組 are written after a grade and a class (idp.school_class, the one home
for the rule the pages, the slips and the PDFs follow)."""

from __future__ import annotations

import pytest

from idp.school_class import class_words


@pytest.mark.parametrize(("grade", "klass", "ja", "en"), [
    ("5", "1", "5年 1組", "Grade 5, Class 1"),
    ("5", "１", "5年 １組", "Grade 5, Class １"),  # a full-width digit is a number too
    ("5", "A", "5年 A組", "Grade 5, Class A"),
    ("1", "い", "1年 い組", "Grade 1, Class い"),
    ("2", "松", "2年 松組", "Grade 2, Class 松"),
    ("3", "二", "3年 二組", "Grade 3, Class 二"),
    ("5", "ひまわり学級", "5年 ひまわり学級", "Grade 5, ひまわり学級"),
    ("", "ひまわり学級", "ひまわり学級", "ひまわり学級"),
    ("4", "さくら", "4年 さくら", "Grade 4, さくら"),
    ("年長", "", "年長", "年長"),
    ("", "2", "2組", "Class 2"),
    ("6", "", "6年", "Grade 6"),
    ("", "", "", ""),
    (None, None, "", ""),
])
def test_kumi_and_nen_follow_only_a_number_or_one_letter(grade, klass, ja, en):
    assert class_words(grade, klass) == ja
    assert class_words(grade, klass, "en") == en
