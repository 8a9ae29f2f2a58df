"""The password sign-in service (idp.signin.password), called directly: no Flask, no pages."""

from __future__ import annotations

import secrets

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from idp.signin import password
from idp.signin.passwords import verify_password
from idp.signin.throttle import IP_POLICY, Throttle
from idp.store.models import Account, AuditEvent
from tests.oidc.conftest import random_ip


@pytest.fixture
def throttle(svc):
    return Throttle(svc.store, secret="test secret " + secrets.token_hex(4))


def _try(svc, throttle, who, typed: str, *, ip: str, login_id: str | None = None,
         cookie: str | None = None, step: password.PasswordStep = password.LOGIN):
    with svc.db.session() as db:
        result = password.sign_in_with_password(
            db, throttle, school_code=who.school_code, login_id=login_id or who.login_id,
            password=typed, ip=ip, device_cookie=cookie, step=step)
        account_id = result.account.id if result.account else None
    return result, account_id


def _events(svc, account_id: str | None, event: str) -> list[AuditEvent]:
    with svc.db.session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.account_id == account_id,
                                                        AuditEvent.event == event)))


def test_the_right_password_signs_in_and_gives_a_device_cookie(svc, throttle, student):
    result, account_id = _try(svc, throttle, student, student.password, ip=random_ip())
    assert result.ok and result.refused is None and result.wait == 0
    assert account_id == student.id
    assert result.device  # the browser gets an allowance of its own for this account
    # No success audit yet: the caller may still refuse (a card that may not join).
    assert _events(svc, student.id, "login.password") == []
    with svc.db.session() as db:
        password.audit_signed_in(db, db.get(Account, student.id), ip="10.0.0.1")
    [event] = _events(svc, student.id, "login.password")
    assert event.outcome == "ok" and event.details.get("acr") is not None


def test_unknown_id_and_wrong_password_give_the_same_refusal(svc, throttle, student):
    wrong, _ = _try(svc, throttle, student, "not the password at all", ip=random_ip())
    unknown, _ = _try(svc, throttle, student, "not the password at all", ip=random_ip(),
                      login_id="no-such-" + secrets.token_hex(3))
    assert (wrong.refused, wrong.wait, wrong.account) == (password.BAD_CREDENTIALS, 0, None)
    assert (unknown.refused, unknown.wait, unknown.account) == \
        (wrong.refused, wrong.wait, wrong.account)
    [refused] = _events(svc, student.id, "login.password")
    assert refused.outcome == "refused" and refused.details["reason"] == "bad_credentials"


def test_an_inactive_account_is_refused_like_a_wrong_password(svc, throttle, make_student):
    locked = make_student(locked=True)
    result, _ = _try(svc, throttle, locked, locked.password, ip=random_ip())
    assert (result.refused, result.wait, result.account) == (password.BAD_CREDENTIALS, 0, None)
    [refused] = _events(svc, locked.id, "login.password")
    assert refused.details["reason"] == "inactive"


def test_the_account_slows_down_even_for_the_right_password(svc, throttle, student):
    ip = random_ip()
    for i in range(5):
        result, _ = _try(svc, throttle, student, f"wrong {i}", ip=ip)
        assert result.refused == password.BAD_CREDENTIALS
    blocked, account_id = _try(svc, throttle, student, student.password, ip=ip)
    assert blocked.refused == password.SLOW_DOWN and 1 <= blocked.wait <= 300
    assert account_id is None


def test_a_slowed_address_gets_the_same_wait_for_unknown_and_real_ids(svc, throttle,
                                                                       student):
    """Abuse: one address guessing many IDs is slowed; then a wrong password for a real
    account and an unknown ID get the same answer (wait), so the answer tells nothing about
    which IDs exist."""
    ip = random_ip()
    for i in range(IP_POLICY.free_failures + 1):
        _try(svc, throttle, student, "guess", ip=ip, login_id=f"nobody-{i}-{secrets.token_hex(2)}")
    unknown, _ = _try(svc, throttle, student, "guess", ip=ip,
                      login_id="nobody-" + secrets.token_hex(3))
    wrong, _ = _try(svc, throttle, student, "guess", ip=ip)
    assert unknown.refused == wrong.refused == password.SLOW_DOWN
    assert unknown.wait > 0 and wrong.wait > 0
    # The account's owner, from another address, is not slowed by the attacker.
    mine, account_id = _try(svc, throttle, student, student.password, ip=random_ip())
    assert mine.ok and account_id == student.id


def test_an_old_hash_is_rehashed_on_sign_in(svc, throttle, make_student):
    student = make_student()
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(
        student.password)
    with svc.db.session() as db:
        db.get(Account, student.id).password_hash = old
    result, _ = _try(svc, throttle, student, student.password, ip=random_ip())
    assert result.ok
    with svc.db.session() as db:
        new = db.get(Account, student.id).password_hash
    assert new != old and verify_password(new, student.password)


def test_the_admin_step_refuses_a_student_with_the_right_password(svc, throttle, student):
    from idp.admin.login_views import ADMIN_PASSWORD

    result, _ = _try(svc, throttle, student, student.password, ip=random_ip(),
                     step=ADMIN_PASSWORD)
    assert (result.refused, result.account) == (password.BAD_CREDENTIALS, None)
    [refused] = _events(svc, student.id, "admin.login")
    assert refused.outcome == "refused" and refused.details["reason"] == "not_admin"
    # Its own throttle keys: the admin refusal does not count against the student's sign-in.
    assert _try(svc, throttle, student, student.password, ip=random_ip())[0].ok
