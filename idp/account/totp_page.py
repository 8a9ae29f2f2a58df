"""A guardian turns TOTP on (or off) for their password sign-in, from their own page.
Flask-free; :mod:`idp.account.totp_views` parses and renders. The TOTP rules themselves
(secret, once-per-step codes) are :mod:`idp.signin.totp`'s, as for the admin sign-in.

Who: guardians only. A pupil's second proof is their My Number card: a child who loses a
phone would be locked out of school apps until a teacher helps, and a card sign-in already
counts as the stronger sign-in. Staff use the admin sign-in's TOTP.

Turning it on needs the current password (a session left open on a shared PC is not enough
to change how this account signs in), then a code from the app, which proves the phone
holds the secret before the sign-in starts asking for it. Turning it off needs the password
and a code.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from idp.accounts.roles import GUARDIAN
from idp.audit import audit
from idp.signin import totp
from idp.signin.passwords import verify_password
from idp.store.admin_models import AdminTotp
from idp.store.models import Account


class TotpPageError(ValueError):
    """``code``: not_guardian | wrong_current | bad_code | already_on | not_on."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def may_use(account: Account) -> bool:
    return account.role == GUARDIAN


def is_on(db: Session, account: Account) -> bool:
    return totp.confirmed(db, account.id) is not None


def _check_password(account: Account, current: str) -> None:
    if account.password_hash is None or not verify_password(account.password_hash, current):
        raise TotpPageError("wrong_current")


def start(db: Session, account: Account, current: str) -> AdminTotp:
    """A new secret to scan (not yet asked at sign-in: :func:`confirm` turns it on)."""
    if not may_use(account):
        raise TotpPageError("not_guardian")
    if is_on(db, account):
        raise TotpPageError("already_on")
    _check_password(account, current)
    row = totp.renew_secret(db, account.id)
    audit(db, "account.totp_started", account_id=account.id, school_id=account.school_id)
    return row


def pending(db: Session, account: Account) -> AdminTotp | None:
    row = db.get(AdminTotp, account.id)
    return row if row is not None and row.confirmed_at is None else None


def confirm(db: Session, account: Account, code: str) -> None:
    """The first code from the app: from now on a password sign-in asks for a code."""
    row = pending(db, account) if may_use(account) else None
    if row is None:
        raise TotpPageError("not_on")
    if not totp.verify(row, code):
        raise TotpPageError("bad_code")
    audit(db, "account.totp_enrolled", account_id=account.id, school_id=account.school_id)


def turn_off(db: Session, account: Account, current: str, code: str) -> None:
    row = totp.confirmed(db, account.id)
    if row is None:
        raise TotpPageError("not_on")
    _check_password(account, current)
    if not totp.verify(row, code):
        raise TotpPageError("bad_code")
    totp.reset(db, account.id)
    audit(db, "account.totp_removed", account_id=account.id, school_id=account.school_id)


def label(account: Account) -> str:
    return f"{account.school.code}/{account.login_id}"
