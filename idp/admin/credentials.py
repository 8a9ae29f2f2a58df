"""Bearer secrets of the admin area: initial access tokens (RFC 7591), admin API tokens and
one-time password reset codes. Each is random, shown once, and stored as a SHA-256 hash."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.accounts.codes import digest
from idp.accounts.roles import ADMIN_ROLES, STAFF_ROLES, Actor
from idp.oidc.scopes import SUPPORTED_SCOPES
from idp.store.admin_models import (
    AdminApiToken,
    InitialAccessToken,
)
from idp.store.models import Account, utcnow

# Letters a teacher can read aloud and a child can type: no 0/O, 1/I/L.
API_TOKEN_MAX_DAYS = 90
IAT_MAX_DAYS = 90


class CredentialError(ValueError):
    """A bad request to make a credential; ``code`` names why (bad lifetime, bad scopes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- IAT
def issue_initial_access_token(db: Session, *, actor: Actor, label: str, days: int,
                               max_uses: int, allowed_scopes: list[str] | None
                               ) -> tuple[InitialAccessToken, str]:
    if not 1 <= days <= IAT_MAX_DAYS:
        raise CredentialError("bad_days", f"days must be 1-{IAT_MAX_DAYS}")
    if not 1 <= max_uses <= 1000:
        raise CredentialError("bad_max_uses", "max_uses must be 1-1000")
    # Only a missing list means "every scope"; an explicitly empty one (a form with no box
    # ticked) is refused below, never widened to all.
    scopes = list(SUPPORTED_SCOPES if allowed_scopes is None else allowed_scopes)
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown or "openid" not in scopes:
        raise CredentialError("bad_scopes",
                              "allowed_scopes must be known scopes and include openid")
    value = "iat_" + secrets.token_urlsafe(32)
    row = InitialAccessToken(token_hash=digest(value), label=label[:200],
                             allowed_scopes=scopes, max_uses=max_uses,
                             created_by=actor.account_id,
                             expires_at=utcnow() + timedelta(days=days))
    db.add(row)
    db.flush()
    return row, value


def consume_initial_access_token(db: Session, value: str) -> InitialAccessToken | None:
    """The token, with one use counted, or None when unknown/expired/revoked/used up.

    The use is counted with a conditional UPDATE so two registrations racing for the last
    use cannot both win."""
    if not value or len(value) > 200:
        return None
    row = db.scalar(select(InitialAccessToken).where(
        InitialAccessToken.token_hash == digest(value)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    counted = db.execute(update(InitialAccessToken).where(
        InitialAccessToken.id == row.id, InitialAccessToken.uses < InitialAccessToken.max_uses)
        .values(uses=InitialAccessToken.uses + 1))
    if counted.rowcount != 1:
        return None
    db.refresh(row)
    return row


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
