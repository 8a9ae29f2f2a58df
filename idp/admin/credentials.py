"""Bearer secrets of the admin area: admin API tokens and one-time password reset and
enrolment codes. Each is random, shown once, and stored as a SHA-256 hash. (Initial and
registration access tokens live with the clients: ``idp.clients.access_tokens``.)"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.admin.roles import ADMIN_ROLES, STAFF_ROLES, Actor
from idp.store.admin_models import (
    AdminApiToken,
    AdminEnrolmentCode,
    PasswordResetCode,
)
from idp.store.models import Account, utcnow

# Letters a teacher can read aloud and a child can type: no 0/O, 1/I/L.
RESET_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
RESET_CODE_LIFETIME = timedelta(hours=24)
# Long enough to reach a new admin by post or in person; single use either way.
ENROLMENT_CODE_LIFETIME = timedelta(hours=72)
API_TOKEN_MAX_DAYS = 90


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class CredentialError(ValueError):
    """A bad request to make a credential; ``code`` names why (bad lifetime, bad scopes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- API tokens
def issue_api_token(db: Session, *, actor: Actor, label: str, days: int
                    ) -> tuple[AdminApiToken, str]:
    if not actor.is_admin:
        raise CredentialError("not_admin", "only admins hold admin API tokens")
    if not 1 <= days <= API_TOKEN_MAX_DAYS:
        raise CredentialError("bad_days", f"days must be 1-{API_TOKEN_MAX_DAYS}")
    value = "mgadm_" + secrets.token_urlsafe(32)
    row = AdminApiToken(token_hash=digest(value), account_id=actor.account_id,
                        label=label[:200], expires_at=utcnow() + timedelta(days=days))
    db.add(row)
    db.flush()
    return row, value


def actor_for_api_token(db: Session, value: str) -> Actor | None:
    """The admin a bearer token acts for — with the account's role *now*."""
    if not value or len(value) > 200:
        return None
    row = db.scalar(select(AdminApiToken).where(AdminApiToken.token_hash == digest(value)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    account = db.get(Account, row.account_id)
    if account is None or not account.active or account.locked:
        return None
    # Ending the account's access (sessions ended, a reset, a password change) ends the API
    # tokens made before it too: one minted by someone who got in once must not outlive it.
    if account.tokens_revoked_at is not None and row.created_at <= account.tokens_revoked_at:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return Actor(account.id, account.role, account.school_id)


def actor_of(account: Account) -> Actor:
    return Actor(account.id, account.role, account.school_id)


def is_admin_account(account: Account | None) -> bool:
    return bool(account and account.role in ADMIN_ROLES and account.active and not account.locked)


def is_staff_account(account: Account | None) -> bool:
    """Who may sign in to /admin with password + TOTP: admins, and teachers (who reach only
    the card-linking pages)."""
    return bool(account and account.role in STAFF_ROLES and account.active and not account.locked)


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


@dataclass(frozen=True)
class ShownOnce:
    """A secret for the page that made it; never stored in clear anywhere."""

    label: str
    value: str


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
