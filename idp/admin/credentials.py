"""Bearer secrets of the admin area: admin API tokens and one-time password reset and
enrolment codes. Each is random, shown once, and stored as a SHA-256 hash. (Initial and
registration access tokens live with the clients: ``idp.clients.access_tokens``.)"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.codes import digest
from idp.accounts.roles import ADMIN_ROLES, STAFF_ROLES, Actor
from idp.store.admin_models import AdminApiToken
from idp.store.models import Account, utcnow

# Letters a teacher can read aloud and a child can type: no 0/O, 1/I/L.
API_TOKEN_MAX_DAYS = 90


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


@dataclass(frozen=True)
class ShownOnce:
    """A secret for the page that made it; never stored in clear anywhere."""

    label: str
    value: str
