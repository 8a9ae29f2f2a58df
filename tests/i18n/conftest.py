"""i18n fixtures: people, a school and an app with ASCII names (so any Japanese left on an
English page is ours, not data), and a provider with card sign-in switched on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.card.conftest import test_pki  # noqa: F401 - the card app needs a trust anchor
from tests.conftest import Student, provider_app, unique

ASCII_SCHOOL = "Maple Elementary"
ASCII_STUDENT = "Ken Sato"
ASCII_APP = "Math Drill"


@pytest.fixture(scope="session")
def ascii_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("i18n"), name=ASCII_SCHOOL)
        s.add(row)
    return row


@pytest.fixture
def ascii_student(svc, ascii_school) -> Student:
    from idp.signin.passwords import hash_password
    from idp.store.models import Account

    password = "long enough i18n password"
    login = unique("ken")
    with svc.db.session() as s:
        row = Account(school_id=ascii_school.id, login_id=login, display_name=ASCII_STUDENT,
                      password_hash=hash_password(password), grade="4", class_name="1")
        s.add(row)
    return Student(row.id, ascii_school.code, login, password)


@pytest.fixture
def ascii_rp(make_rp):
    return make_rp(host="i18n.example.test", name=ASCII_APP)


@pytest.fixture(scope="session")
def card_app(app, settings_overrides, test_pki) -> Iterator:  # noqa: F811
    """The provider with card sign-in on, so the card page renders every script message.
    (Depends on ``app``, which brings the shared database up to date.)"""
    with provider_app({**settings_overrides, "jpki_trust_anchors": [str(test_pki.root_path)],
                       "jpki_revocation": "none"}, migrate=False) as application:
        yield application
