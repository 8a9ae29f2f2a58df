"""The age rule, called directly: a birth date, else a grade that names its stage (the
youngest age that grade can be), else unknown (a linked guardian is asked)."""

from __future__ import annotations

from datetime import date

import pytest

from idp.accounts.guardians import Need, guardian_need, school_year_of, youngest_age
from idp.store.models import Account

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(("grade", "year"), [
    ("小5", 5), ("P5", 5), ("p1", 1), ("中1", 7), ("J3", 9), ("高1", 10), ("H3", 12),
    ("05", 5), ("12", 12), ("5", None), ("", None), ("P7", None), ("J4", None),
    ("13", None), ("小", None), ("中1年", 7), (None, None)])
def test_school_year_of(grade, year):
    assert school_year_of(grade) == year


def test_youngest_age_from_birth_date_counts_the_birthday():
    assert youngest_age(date(2013, 12, 2), "", TODAY) == 13  # birthday today
    assert youngest_age(date(2013, 12, 3), "", TODAY) == 12  # tomorrow
    assert youngest_age(date(2013, 12, 3), "H3", TODAY) == 12  # the date wins over a grade


def test_youngest_age_from_grade_never_makes_a_child_older():
    assert youngest_age(None, "小6", TODAY) == 11
    assert youngest_age(None, "中1", TODAY) == 12  # some first-years are still 12
    assert youngest_age(None, "中2", TODAY) == 13
    assert youngest_age(None, "5", TODAY) is None


def _pupil(**fields) -> Account:
    return Account(role=fields.pop("role", "student"), grade=fields.pop("grade", ""),
                   birth_date=fields.pop("birth_date", None))


@pytest.mark.parametrize(("account", "scopes", "limit", "linked", "need"), [
    (_pupil(grade="小5"), {"openid"}, 13, True, Need.NONE),  # openid alone: never asked
    (_pupil(grade="小5"), {"openid", "profile"}, 13, True, Need.GUARDIAN),
    (_pupil(grade="小5"), {"profile"}, 13, False, Need.NO_GUARDIAN),
    (_pupil(grade="中2"), {"profile"}, 13, True, Need.NONE),
    (_pupil(grade="中1"), {"profile"}, 13, True, Need.GUARDIAN),
    (_pupil(grade="小5"), {"profile"}, 0, True, Need.NONE),  # the school turned it off
    (_pupil(grade="5"), {"profile"}, 13, True, Need.GUARDIAN),  # unknown age, guardian
    (_pupil(grade="5"), {"profile"}, 13, False, Need.NONE),  # unknown, nobody linked
    (_pupil(grade="H3"), {"guardian"}, 13, True, Need.GUARDIAN),  # the app asked
    (_pupil(grade="H3"), {"guardian"}, 13, False, Need.NO_GUARDIAN),
    (_pupil(role="teacher"), {"profile"}, 13, True, Need.NONE),
])
def test_guardian_need(account, scopes, limit, linked, need):
    assert guardian_need(account, age_limit=limit, scopes=scopes, has_guardian=linked,
                         today=TODAY) == need
