"""The password sign-in service, next to the card one (:mod:`idp.auth.card`).

Nothing here imports Flask: the views pass in the store, the throttle, what was typed, the
client address and the device cookie, and get back a :class:`PasswordResult`, so every rule
can be tested by calling it.

The rules: find the account by school code and login id; ask the throttle first (a slowed
key or address is refused before the password is checked); always spend one Argon2
verification, even for an unknown id; refuse an account that may not sign in here; on a
refusal count the failure and audit it. An unknown id, a wrong password and an account that
may not sign in all give the same refusal, ``bad_credentials``; a slowed address gives
``slow_down`` with the seconds to wait, whether or not the password was right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.audit import audit
from idp.metrics import count_sign_in
from idp.signin.context import ACR_PASSWORD
from idp.signin.passwords import _hasher, needs_rehash, verify_password
from idp.signin.throttle import Throttle, audit_guessing
from idp.store.models import Account, School

#: Refusal codes.
BAD_CREDENTIALS = "bad_credentials"
SLOW_DOWN = "slow_down"


def may_sign_in(account: Account) -> bool:
    """The student's sign-in: an active account that is not locked."""
    return account.active and not account.locked


@dataclass(frozen=True)
class PasswordStep:
    """What differs between the sign-ins that take a password (the student's, the admin's)."""

    #: Prefix of the throttle key ``<prefix><school>:<login id>``.
    key_prefix: str = ""
    #: Audit event of a refusal.
    event: str = "login.password"
    #: Whether an account whose password is right may sign in here.
    usable: Callable[[Account], bool] = may_sign_in
    #: Audit reason when the password is right but the account may not sign in here.
    unusable_reason: str = "inactive"
    #: Extra details of the guessing audit (``step="admin"``).
    guessing: tuple[tuple[str, str], ...] = ()
    #: Rehash a password whose hash uses older parameters.
    rehash: bool = True
    #: The ``method`` label of ``mynagate_sign_ins_total`` (idp.metrics).
    method: str = "password"


#: The student's (and everyone's) sign-in page.
LOGIN = PasswordStep()


@dataclass(frozen=True)
class PasswordResult:
    """A signed-in account (and the device cookie to set), or a refusal code."""

    account: Account | None = None
    device: str | None = None
    refused: str | None = None
    wait: int = 0  # seconds to wait, with ``slow_down``

    @property
    def ok(self) -> bool:
        return self.refused is None


def sign_in_with_password(db: Session, throttle: Throttle, *, school_code: str, login_id: str,
                          password: str, ip: str | None, device_cookie: str | None,
                          step: PasswordStep = LOGIN) -> PasswordResult:
    """Check a password sign-in. A refusal is audited (and committed, so the count and the
    audit survive the refusal); a success is not audited here: the caller may still refuse
    (a card that may not join the account) and records it with :func:`audit_signed_in`."""
    account = db.scalar(select(Account).join(School).where(
        School.code == school_code, Account.login_id == login_id))
    guessing = dict(step.guessing)
    attempt = throttle.begin(f"{step.key_prefix}{school_code}:{login_id.lower()}", ip,
                             device=device_cookie, account_id=account.id if account else None)
    if not attempt.allowed:
        audit_guessing(db, attempt, ip=ip, **guessing)
        count_sign_in(step.method, SLOW_DOWN)
        return PasswordResult(refused=SLOW_DOWN, wait=attempt.wait)
    ok = verify_password(account.password_hash if account else None, password)
    if not ok or account is None or not step.usable(account):
        failure = attempt.failed()
        reason = BAD_CREDENTIALS if not ok else step.unusable_reason
        audit(db, step.event, outcome="refused", ip=ip,
              account_id=account.id if account else None, reason=reason)
        count_sign_in(step.method, SLOW_DOWN if failure.wait else reason)
        audit_guessing(db, attempt, ip=ip, **guessing)
        db.commit()
        if failure.wait:  # the address is slowed: the same answer as for an unknown ID
            return PasswordResult(refused=SLOW_DOWN, wait=failure.wait)
        return PasswordResult(refused=BAD_CREDENTIALS)
    device = attempt.succeeded(device_cookie)
    # The password check passed (the caller may still refuse, e.g. a card that may not join
    # the account: that is audited, not counted as a failed password).
    count_sign_in(step.method)
    if step.rehash and needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    return PasswordResult(account=account, device=device)


def audit_signed_in(db: Session, account: Account, *, ip: str | None) -> None:
    """The audit event of a password sign-in that went through."""
    audit(db, "login.password", account_id=account.id, school_id=account.school_id, ip=ip,
          acr=ACR_PASSWORD)
