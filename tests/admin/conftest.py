"""Admin fixtures: admins of each role with a confirmed TOTP, API tokens, signed-in admin
browsers, a second school, and an account/card in each school."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import pytest

# The card-enabled app and card minting of the card tests, for school-assisted linking.
from tests.card.conftest import card_keys, crl_app, new_card, test_pki  # noqa: F401
from tests.conftest import csrf_of, unique


@dataclass
class Admin:
    id: str
    role: str
    school_id: str
    school_code: str
    login_id: str
    password: str
    totp_secret: str


@pytest.fixture(scope="session")
def other_school(svc):
    from idp.store.models import School

    with svc.db.session() as s:
        row = School(code=unique("oth"), name="となり小学校")
        s.add(row)
    return row


def _make_account(svc, school, role: str, *, totp: bool = True) -> Admin:
    from idp.signin.passwords import hash_password
    from idp.store.admin_models import AdminTotp
    from idp.store.models import Account, utcnow

    password = "admin passphrase " + secrets.token_hex(3)
    login = unique(role.replace("_", ""))
    secret = pyotp.random_base32()
    with svc.db.session() as s:
        row = Account(school_id=school.id, login_id=login, display_name=f"{role} さん",
                      role=role, password_hash=hash_password(password))
        s.add(row)
        s.flush()
        if totp:
            s.add(AdminTotp(account_id=row.id, secret=secret, confirmed_at=utcnow(),
                            last_step=0))
    return Admin(row.id, role, school.id, school.code, login, password, secret)


@pytest.fixture
def make_account(svc, school):
    def make(role: str = "platform_admin", in_school=None, totp: bool = True) -> Admin:
        return _make_account(svc, in_school or school, role, totp=totp)

    return make


@pytest.fixture
def platform_admin(make_account):
    return make_account("platform_admin")


@pytest.fixture
def school_admin(make_account):
    return make_account("school_admin")


def api_token_for(svc, account_id: str, days: int = 7) -> str:
    """A token row made directly (also for non-admins: as if the owner had been demoted)."""
    from idp.accounts.codes import digest
    from idp.store.admin_models import AdminApiToken
    from idp.store.models import utcnow

    value = "mgadm_" + secrets.token_urlsafe(24)
    with svc.db.session() as s:
        s.add(AdminApiToken(token_hash=digest(value), account_id=account_id, label="test",
                            expires_at=utcnow() + timedelta(days=days)))
    return value


@pytest.fixture
def token_of(svc):
    def make(who) -> dict[str, str]:
        return {"Authorization": "Bearer " + api_token_for(svc, who.id)}

    return make


def enrolment_code_for(svc, account_id: str) -> str:
    """A one-time TOTP enrolment code, as `idp admin enrol-code` would print it."""
    from idp.accounts.codes import issue_enrolment_code

    with svc.db.session() as s:
        code, _ = issue_enrolment_code(s, account_id=account_id, created_by="test")
    return code


def open_enrolment(client, code: str):
    """On /admin/totp after the password step: give the enrolment code (shows the secret)."""
    page = client.get("/admin/totp")
    return client.post("/admin/totp/enrol", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "enrolment_code": code})


def admin_sign_in(client, admin: Admin):
    """The real flow: /admin/login with the password, then /admin/totp with a fresh code."""
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "school": admin.school_code,
        "login_id": admin.login_id, "password": admin.password, "next": ""})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"].endswith("/admin/totp")
    page = client.get("/admin/totp")
    response = client.post("/admin/totp", data={
        "csrf_token": csrf_of(page.get_data(as_text=True)),
        "code": pyotp.TOTP(admin.totp_secret).now()})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return response


def own_ip(client):
    """Give a test client its own address, so the failures a test makes on purpose do not
    count against 127.0.0.1's per-IP throttle shared by the whole suite."""
    client.environ_base["REMOTE_ADDR"] = "10." + ".".join(
        str(secrets.randbelow(250) + 1) for _ in range(3))
    return client


def form_token(client, path: str) -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html) or \
        re.search(rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', html)
    assert match, f"no hidden {name}"
    return match.group(1)


@pytest.fixture
def card_for(svc):
    """A card binding on an account (status active | revoked | expired)."""
    from idp.store.models import CardBinding, utcnow

    def make(account_id: str, status: str = "active"):
        not_after = utcnow() + timedelta(days=365 if status != "expired" else -1)
        with svc.db.session() as s:
            row = CardBinding(account_id=account_id, issuer="CN=Test CA,O=JPKI-TEST,C=JP",
                              serial=secrets.token_hex(8),
                              certificate_sha256=secrets.token_hex(32), not_after=not_after,
                              status="revoked" if status == "revoked" else "active")
            s.add(row)
        return row

    return make


# ----------------------------------------------------------------------------- transfers
@pytest.fixture
def new_school(svc):
    """A fresh school (a transfer's receiving side, or a third school)."""
    from idp.store.models import School

    def make(name: str = "みなみ小学校") -> School:
        with svc.db.session() as s:
            row = School(code=unique("to"), name=name)
            s.add(row)
        return row

    return make


@pytest.fixture
def receiving(new_school):
    return new_school("みなみ小学校")


@pytest.fixture
def receiving_admin(make_account, receiving):
    return make_account("school_admin", in_school=receiving)
