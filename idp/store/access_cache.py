"""Issued access tokens, kept in the short-lived store as well as the database, so that
UserInfo (called on every sign-in at every app) answers without a database round trip.

The database stays the record: the store holds a copy, keyed by the token's hash, that dies
with the token (its TTL is the token's lifetime). The rules that keep the copy honest:

- **Written after the commit** of the grant that issued the token, never before: a copy
  never describes a token the database does not hold.
- **Forgotten before a revocation commits**: every path that revokes access tokens (a
  family: code replay, refresh reuse, consent withdrawn; a whole account: lock, reset,
  card revoked; one token: RFC 7009) deletes the copies in the same step. A revoked family
  is also marked as such for as long as its tokens may live, so a copy whose grant
  committed just before the revocation but is written just after it is not written at
  all (:func:`remember`). When the store
  cannot be reached the revocation fails with it (503, retry) rather than leave a copy
  that would outlive it.
- **A missing copy is not a refusal**: the reader falls back to the database (a store that
  restarted empty, a token issued before this cache existed), which still decides.
- A copy cannot outlive an account-wide revocation even if one were restored from an old
  snapshot: the reader compares its ``issued_at`` with the account's ``tokens_revoked_at``.

Flask-free: each function takes the store it acts on, or the session whose database the
app attached its store to (:func:`attach`; revocations run inside their caller's unit of
work, from views, the admin API and CLI commands alike).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.store.models import Token
from idp.store.shortlived import ShortLivedStore

_PREFIX = "at:"
_REVOKED_FAMILY = "at-revoked-family:"
# The longest access-token lifetime a client may be given (idp.clients.metadata's
# ACCESS_LIFETIME_RANGE; a test holds them equal).
REVOKED_FAMILY_TTL = 24 * 3600
_INFO_KEY = "access_token_copies"


def attach(database: Any, store: ShortLivedStore) -> None:
    """Make ``store`` the home of the copies for every session ``database`` opens."""
    database.session_info[_INFO_KEY] = store


def store_of(db: Session) -> ShortLivedStore:
    """The store attached to this session's database. A session of a database nobody
    attached a store to cannot revoke safely (copies elsewhere would outlive it): refused."""
    store = db.info.get(_INFO_KEY)
    if store is None:
        raise RuntimeError("no short-lived store attached to this database "
                           "(idp.store.access_cache.attach)")
    return store


def remember(store: ShortLivedStore, access_hash: str, *, family_id: str, client_id: str,
             account_id: str, scope: str, issued_at: datetime, expires_at: datetime) -> None:
    """Write the copy, unless the token's family was revoked meanwhile (a revocation that
    committed between the grant's commit and this write would not have found the copy to
    delete: its mark keeps this write from happening)."""
    ttl = int((expires_at - issued_at).total_seconds())
    if ttl <= 0:
        return
    store.put_unless(_PREFIX + access_hash, {
        "client_id": client_id, "account_id": account_id, "scope": scope,
        "issued_at": issued_at.isoformat(), "expires_at": expires_at.isoformat()}, ttl,
        marker=_REVOKED_FAMILY + family_id)


def forget_family(db: Session, family_id: str) -> None:
    """Before a family's revocation commits: mark the family revoked for as long as any of
    its access tokens may live (so a copy written after this moment undoes itself), then
    delete the copies the database knows of. Raises when the store cannot be reached."""
    # put_if_absent is never batched: the mark is in Redis before the copies are looked
    # for, even inside a write-behind batch (a mark already there stays as it is).
    store_of(db).put_if_absent(_REVOKED_FAMILY + family_id, {}, REVOKED_FAMILY_TTL)
    forget_tokens(db, Token.family_id == family_id)


def recall(store: ShortLivedStore, access_hash: str) -> dict[str, Any] | None:
    """The copy with its times as datetimes (naive UTC, as the database keeps them), or
    None when there is none or it cannot be read as one."""
    record = store.get(_PREFIX + access_hash)
    if record is None:
        return None
    try:
        return {**record, "issued_at": datetime.fromisoformat(record["issued_at"]),
                "expires_at": datetime.fromisoformat(record["expires_at"])}
    except (KeyError, TypeError, ValueError):
        return None


def forget(db: Session, access_hashes: Iterable[str]) -> None:
    """Delete the copies, from inside the revoking unit of work ``db``."""
    store = store_of(db)
    for access_hash in access_hashes:
        store.delete(_PREFIX + access_hash)


def forget_tokens(db: Session, which: Any) -> None:
    """Delete the copies of the unrevoked access tokens ``which`` (a condition on
    :class:`Token`) selects, before the revocation that selects them commits. Raises when
    the store cannot be reached, so the caller's revocation fails whole."""
    forget(db, db.scalars(select(Token.access_token_hash).where(
        which, Token.revoked_at.is_(None))).all())
