"""The bearer tokens that let an app manage its own registration: initial access tokens
(RFC 7591 §3, issued by a platform admin, limited in uses, lifetime and scopes) and
registration access tokens (RFC 7592, one per self-registered client).

Each is random, shown once, and stored only as a SHA-256 hash (``registry.hash_secret``).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.clients.registry import hash_secret
from idp.scopes import SUPPORTED_SCOPES
from idp.store.admin_models import InitialAccessToken
from idp.store.models import Client, utcnow

IAT_MAX_DAYS = 90
IAT_MAX_USES = 1000


class AccessTokenError(ValueError):
    """A bad request to make an access token; ``code`` names why (see admin.messages)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def issue_initial_access_token(db: Session, *, created_by: str, label: str, days: int,
                               max_uses: int, allowed_scopes: list[str] | None
                               ) -> tuple[InitialAccessToken, str]:
    if not 1 <= days <= IAT_MAX_DAYS:
        raise AccessTokenError("bad_days", f"days must be 1-{IAT_MAX_DAYS}")
    if not 1 <= max_uses <= IAT_MAX_USES:
        raise AccessTokenError("bad_max_uses", f"max_uses must be 1-{IAT_MAX_USES}")
    # Only a missing list means "every scope"; an explicitly empty one (a form with no box
    # ticked) is refused below, never widened to all.
    scopes = list(SUPPORTED_SCOPES if allowed_scopes is None else allowed_scopes)
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown or "openid" not in scopes:
        raise AccessTokenError("bad_scopes",
                               "allowed_scopes must be known scopes and include openid")
    value = "iat_" + secrets.token_urlsafe(32)
    row = InitialAccessToken(token_hash=hash_secret(value), label=label[:200],
                             allowed_scopes=scopes, max_uses=max_uses,
                             created_by=created_by,
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
        InitialAccessToken.token_hash == hash_secret(value)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    counted = db.execute(update(InitialAccessToken).where(
        InitialAccessToken.id == row.id, InitialAccessToken.uses < InitialAccessToken.max_uses)
        .values(uses=InitialAccessToken.uses + 1))
    if counted.rowcount != 1:
        return None
    db.refresh(row)
    return row


def issue_registration_access_token(row: Client) -> str:
    """A new registration access token for a self-registered client (shown once); an
    earlier one stops working."""
    value = secrets.token_urlsafe(32)
    row.registration_access_token_hash = hash_secret(value)
    return value


def registration_access_token_matches(row: Client | None, value: str | None) -> bool:
    """Whether ``value`` is the client's registration access token. A client registered
    by an admin (no token) matches nothing."""
    if row is None or not value or not row.registration_access_token_hash:
        return False
    return hmac.compare_digest(row.registration_access_token_hash, hash_secret(value))
