"""Ending an account's access: when a person is locked, deactivated, signed out
everywhere, has a password reset or a card revoked, every token any app holds for them stops.
Flask-free; the account rooms call it inside their own unit of work."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.audit import audit
from idp.store import access_cache
from idp.store.models import Account, Token, TokenFamily, utcnow


def revoke_account_tokens(db: Session, account_id: str, reason: str, *,
                          actor: str | None = None) -> int:
    """The person's access ended (locked, deactivated, sessions ended, password reset or
    changed, card revoked): every refresh-token family of the account, for every client, is
    revoked and every access token stops at once. Returns how many families were live.

    Runs in the caller's unit of work, so the revocation commits with the change that
    caused it (or neither does)."""
    now = utcnow()
    # The store's copies of the access tokens go first (idp.store.access_cache): if the
    # store cannot be reached this raises and nothing is revoked, rather than leaving a
    # copy that outlives the revocation.
    access_cache.forget_tokens(db, Token.account_id == account_id)
    families = db.execute(update(TokenFamily).where(TokenFamily.account_id == account_id,
                                                    TokenFamily.revoked_at.is_(None))
                          .values(revoked_at=now, revoked_reason=reason)).rowcount
    db.execute(update(Token).where(Token.account_id == account_id, Token.revoked_at.is_(None))
               .values(revoked_at=now))
    # Codes live in the short-lived store, not findable by account: this moment lets the
    # code grant refuse one issued before it.
    db.execute(update(Account).where(Account.id == account_id).values(tokens_revoked_at=now))
    audit(db, "token.account_revoked", actor=actor, account_id=account_id, reason=reason,
          families=families)
    return families
