"""One-time codes a person reads from a sheet: password reset codes and staff TOTP
enrolment codes (12 letters, stored as a hash, one live code per account). Flask-free."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.accounts.roles import Actor
from idp.store.admin_models import AdminEnrolmentCode, PasswordResetCode
from idp.store.models import utcnow

RESET_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RESET_CODE_LIFETIME = timedelta(hours=24)
# Long enough to reach a new admin by post or in person; single use either way.
ENROLMENT_CODE_LIFETIME = timedelta(hours=72)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ----------------------------------------------------------------------------- reset codes
def normalise_reset_code(raw: str) -> str:
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())[:32]


def issue_reset_code(db: Session, *, account_id: str, actor: Actor
                     ) -> tuple[str, PasswordResetCode]:
    """A new one-time code; earlier unused codes of the account stop working."""
    now = utcnow()
    db.execute(update(PasswordResetCode).where(
        PasswordResetCode.account_id == account_id, PasswordResetCode.used_at.is_(None))
        .values(used_at=now))
    raw, shown = _readable_code()
    row = PasswordResetCode(account_id=account_id, code_hash=digest(raw),
                            created_by=actor.account_id, expires_at=now + RESET_CODE_LIFETIME)
    db.add(row)
    db.flush()
    return shown, row


def _readable_code() -> tuple[str, str]:
    """12 letters a person can read aloud (about 59 bits), and how it is shown: XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(RESET_ALPHABET) for _ in range(12))
    return raw, "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def find_reset_code(db: Session, account_id: str, raw: str) -> PasswordResetCode | None:
    code = normalise_reset_code(raw)
    if len(code) != 12:
        return None
    row = db.scalar(select(PasswordResetCode).where(
        PasswordResetCode.code_hash == digest(code),
        PasswordResetCode.account_id == account_id))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


# ----------------------------------------------------------------------------- enrolment codes
def issue_enrolment_code(db: Session, *, account_id: str, created_by: str
                         ) -> tuple[str, AdminEnrolmentCode]:
    """A new one-time TOTP enrolment code (shown once); earlier unused ones stop working."""
    now = utcnow()
    db.execute(update(AdminEnrolmentCode).where(
        AdminEnrolmentCode.account_id == account_id, AdminEnrolmentCode.used_at.is_(None))
        .values(used_at=now))
    raw, shown = _readable_code()
    row = AdminEnrolmentCode(account_id=account_id, code_hash=digest(raw),
                             created_by=created_by[:64],
                             expires_at=now + ENROLMENT_CODE_LIFETIME)
    db.add(row)
    db.flush()
    return shown, row


def consume_enrolment_code(db: Session, account_id: str, raw: str) -> bool:
    """Use up a valid code of this account. A conditional UPDATE: two browsers racing with
    the same code cannot both open the enrolment."""
    code = normalise_reset_code(raw)
    if len(code) != 12:
        return False
    used = db.execute(update(AdminEnrolmentCode).where(
        AdminEnrolmentCode.code_hash == digest(code),
        AdminEnrolmentCode.account_id == account_id,
        AdminEnrolmentCode.used_at.is_(None),
        AdminEnrolmentCode.expires_at > utcnow()).values(used_at=utcnow()))
    return used.rowcount == 1
