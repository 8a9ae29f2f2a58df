"""Guardian fixtures: a guardian account (password sign-in like a student), linked to a
child by the school, and a second browser (the guardian's own device)."""

from __future__ import annotations

import re
import secrets
from datetime import date

import pytest
from flask.testing import FlaskClient

from tests.admin.conftest import (  # noqa: F401 - shared admin fixtures
    make_account,
    other_school,
    school_admin,
    token_of,
)
from tests.card.conftest import (  # noqa: F401 - card sign-in for guardians
    card_browser,
    card_keys,
    crl_app,
    new_card,
    test_pki,
)
from tests.conftest import Browser, Student, csrf_of, unique


@pytest.fixture
def make_guardian(svc, school):
    from idp.signin.passwords import hash_password
    from idp.store.models import Account

    def make(in_school=None) -> Student:
        password = "guardian passphrase " + secrets.token_hex(2)
        target = in_school or school
        login = unique("grd")
        with svc.db.session() as s:
            row = Account(school_id=target.id, login_id=login, display_name="山田 太郎",
                          role="guardian", password_hash=hash_password(password))
            s.add(row)
        return Student(row.id, target.code, login, password)

    return make


def link(svc, guardian: Student, child: Student) -> str:
    from idp.store.models import GuardianLink

    with svc.db.session() as s:
        row = GuardianLink(guardian_id=guardian.id, child_id=child.id, created_by="test")
        s.add(row)
    return row.id


@pytest.fixture
def young_child(make_student):
    """A 10-year-old (by birth date): under the default age of 13."""
    today = date.today()
    return make_student(birth_date=date(today.year - 10, 1, 1))


@pytest.fixture
def guardian(svc, make_guardian, young_child):
    adult = make_guardian()
    link(svc, adult, young_child)
    return adult


@pytest.fixture
def guardian_device(app) -> FlaskClient:
    """The guardian's own phone: another cookie jar than the child's."""
    return app.test_client()


def sign_in(device: FlaskClient, person: Student) -> None:
    page = device.get("/login")
    response = Browser(device).password_login(page, person)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def post_button(device: FlaskClient, page_path: str, action: str):
    """Post to ``action`` with this session's CSRF token (taken from ``page_path``, or the
    password page when that page has no form: the token is the session's, not the form's)."""
    html = device.get(page_path).get_data(as_text=True)
    if "csrf_token" not in html:
        html = device.get("/account/password").get_data(as_text=True)
    return device.post(action, data={"csrf_token": csrf_of(html)})


def request_ids(html: str) -> list[str]:
    return re.findall(r'id="request-([0-9a-f]+)"', html)
