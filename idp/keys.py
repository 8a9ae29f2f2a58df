"""ID token signing keys: RS256 (the default) and ES256, with rotation.

The database lists every key (kid, algorithm, public JWK, state), so every worker and host
publishes and signs with the same keys. The private halves live only in files under
``IDP_KEYS_DIR`` (``<kid>.jwk.json``, mode 0600): a copy of the database cannot sign a
token.

A key's life, per algorithm:

``next``     published in the JWKS, not yet signing. Relying parties cache the JWKS
             (``max-age`` 300 s here), so a key is announced a whole rotation before use.
``active``   signs every new ID token (the newest active key of its algorithm).
``retired``  still published for ``IDP_SIGNING_KEY_RETENTION`` seconds, so tokens it signed
             keep verifying (an ``id_token_hint`` at logout); its private file is deleted.

``idp keys rotate`` promotes ``next`` to ``active`` and announces a fresh ``next``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from idp.store.models import SigningKey, iso_utc, utcnow

ALGORITHMS = ("RS256", "ES256")
NEXT, ACTIVE, RETIRED = "next", "active", "retired"
# Before the database kept the list: one file per algorithm, imported once as the active key.
LEGACY_FILES = {"RS256": "rs256.jwk.json", "ES256": "es256.jwk.json"}
# The PostgreSQL advisory lock that serialises changes to the key list (any fixed 64-bit
# number; this one is "mynagate keys" in a hash).
KEY_LIST_LOCK = 0x6D796E6B657973
# How long a worker trusts its copy of the key list before reading it again: a rotation
# reaches every worker within this time.
REFRESH_SECONDS = 30.0

Key = RSAKey | ECKey
log = structlog.get_logger("idp.keys")


class KeyFileMissing(RuntimeError):
    """The private half of a key that must sign is not in ``IDP_KEYS_DIR``."""


def _generate(alg: str) -> Key:
    if alg == "RS256":
        return RSAKey.generate_key(2048, auto_kid=True)
    return ECKey.generate_key("P-256", auto_kid=True)


def _import(alg: str, data: dict) -> Key:
    return (RSAKey if alg == "RS256" else ECKey).import_key(data)


def _private_path(directory: Path, kid: str) -> Path:
    return directory / f"{kid}.jwk.json"


def _write_private(directory: Path, kid: str, data: dict) -> None:
    """Atomically, mode 0600: the file holds a private key."""
    directory.mkdir(parents=True, exist_ok=True)
    path = _private_path(directory, kid)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _public_jwk(alg: str, key: Key) -> dict[str, Any]:
    data = key.as_dict(private=False)
    data.update(alg=alg, use="sig", kid=key.kid)
    return data


# ----------------------------------------------------------------------------- the list
def _add_key(db: Session, directory: Path, alg: str, state: str,
             key: Key | None = None) -> SigningKey:
    key = key or _generate(alg)
    private = key.as_dict(private=True)
    private.update(alg=alg, use="sig", kid=key.kid)
    _write_private(directory, str(key.kid), private)
    now = utcnow()
    row = SigningKey(kid=str(key.kid), alg=alg, public_jwk=_public_jwk(alg, key), state=state,
                     created_at=now, activated_at=now if state == ACTIVE else None)
    db.add(row)
    db.flush()
    return row


def _rows(db: Session, alg: str, state: str) -> list[SigningKey]:
    return list(db.scalars(select(SigningKey).where(
        SigningKey.alg == alg, SigningKey.state == state)
        .order_by(SigningKey.activated_at.desc(), SigningKey.created_at.desc())))


def _lock_key_list(db: Session) -> None:
    """Hold the key list for this transaction: whoever changes it (the first start of an
    instance, a rotation) waits here for another who is doing the same, and then reads what
    that one committed. Two instances starting at once on an empty list would otherwise each
    make keys of their own, and sign with different keys until they next read the list.

    PostgreSQL: a transaction-level advisory lock, released at commit or rollback (also
    between hosts). SQLite: a write statement takes the database's write lock for the rest
    of the transaction (pysqlite opens it there), so the second writer waits for the first
    one's commit; the statement itself changes nothing."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": KEY_LIST_LOCK})
    elif dialect == "sqlite":
        db.execute(text("UPDATE signing_keys SET state = state WHERE 1 = 0"))


def _missing(db: Session) -> bool:
    return any(not _rows(db, alg, state) for alg in ALGORITHMS for state in (ACTIVE, NEXT))


def ensure_keys(db: Session, directory: str | Path) -> list[SigningKey]:
    """Give each algorithm an active and a next key, creating what is missing (the rows
    created). A key file from before the list existed becomes the active key, same kid.

    Safe when several instances call it at once (see :func:`_lock_key_list`): only the
    first creates keys, the others find them."""
    directory = Path(directory)
    created: list[SigningKey] = []
    if not _missing(db):
        return created  # the usual case, every REFRESH_SECONDS: no lock taken
    _lock_key_list(db)
    for alg in ALGORITHMS:
        if not _rows(db, alg, ACTIVE):
            legacy = directory / LEGACY_FILES[alg]
            key = _import(alg, json.loads(legacy.read_text())) if legacy.exists() else None
            created.append(_add_key(db, directory, alg, ACTIVE, key))
        if not _rows(db, alg, NEXT):
            created.append(_add_key(db, directory, alg, NEXT))
    return created


def rotate(db: Session, directory: str | Path, algorithms: Iterable[str] = ALGORITHMS
           ) -> list[SigningKey]:
    """Per algorithm: the next key starts signing, the active one retires (its private file
    is deleted), and a fresh next key is announced. Returns the newly active rows."""
    algorithms = list(algorithms)
    unknown = [alg for alg in algorithms if alg not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithm {unknown[0]!r} (one of {', '.join(ALGORITHMS)})")
    directory = Path(directory)
    _lock_key_list(db)  # two rotations at once would otherwise promote twice
    ensure_keys(db, directory)
    now = utcnow()
    promoted = []
    for alg in algorithms:
        for old in _rows(db, alg, ACTIVE):
            old.state, old.retired_at = RETIRED, now
            _private_path(directory, old.kid).unlink(missing_ok=True)
        new = _rows(db, alg, NEXT)[0]
        new.state, new.activated_at = ACTIVE, now
        promoted.append(new)
        db.flush()
        _add_key(db, directory, alg, NEXT)
    return promoted


def prune(db: Session, retention: int) -> list[str]:
    """Delete retired keys older than ``retention`` seconds from the list; their kids."""
    cutoff = utcnow() - timedelta(seconds=retention)
    old = list(db.scalars(select(SigningKey).where(
        SigningKey.state == RETIRED, SigningKey.retired_at < cutoff)))
    for row in old:
        db.delete(row)
    return [row.kid for row in old]


def published(db: Session, retention: int) -> list[SigningKey]:
    """The keys a relying party may meet: next, active, and retired within retention."""
    cutoff = utcnow() - timedelta(seconds=retention)
    rows = db.scalars(select(SigningKey).order_by(SigningKey.alg, SigningKey.created_at))
    return [row for row in rows
            if row.state != RETIRED or (row.retired_at and row.retired_at >= cutoff)]


def describe(row: SigningKey) -> dict[str, Any]:
    return {"kid": row.kid, "alg": row.alg, "state": row.state,
            "created_at": iso_utc(row.created_at), "activated_at": iso_utc(row.activated_at),
            "retired_at": iso_utc(row.retired_at)}


# ----------------------------------------------------------------------------- in a worker
@dataclass(frozen=True)
class _Snapshot:
    signing: dict[str, Key]  # alg -> the active key, private half loaded
    jwks: dict[str, Any]
    keyset: KeySet  # the same keys, for verifying (id_token_hint)
    read_at: float


class SigningKeys:
    """What one worker signs and publishes with: the database's list, read again every
    ``REFRESH_SECONDS`` (so a rotation reaches every worker), private halves from files.

    Reads lazily: creating the app needs no database (``idp db upgrade`` creates the table).
    When the database cannot be read, the last good copy keeps serving.
    """

    def __init__(self, database: Any, directory: str | Path, retention: int) -> None:
        self._database = database
        self._directory = Path(directory)
        self._retention = retention
        self._snapshot: _Snapshot | None = None
        self._private: dict[str, Key] = {}
        self._lock = threading.Lock()

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.read_at < REFRESH_SECONDS:
            return snapshot
        with self._lock:
            if self._snapshot is not snapshot:
                return self._snapshot  # another thread just read it
            try:
                self._snapshot = self._read()
            except Exception as exc:
                if snapshot is None:
                    raise
                # The database is away (or a new key's file is not here yet): keep signing
                # and publishing with what we had, and try again after REFRESH_SECONDS.
                log.warning("signing_keys_not_refreshed", error=str(exc)[:200])
                self._snapshot = replace(snapshot, read_at=time.monotonic())
            return self._snapshot

    def refresh(self) -> None:
        """Read the list now (after a rotation in this process, and in tests)."""
        with self._lock:
            self._snapshot = self._read()

    def _read(self) -> _Snapshot:
        with self._database.session() as db:
            ensure_keys(db, self._directory)
            rows = published(db, self._retention)
            db.expunge_all()
        newest_active: dict[str, SigningKey] = {}
        for row in sorted((r for r in rows if r.state == ACTIVE),
                          key=lambda r: (r.activated_at or r.created_at, r.kid)):
            newest_active[row.alg] = row  # one per algorithm (kept so by _lock_key_list)
        signing = {alg: self._private_key(row) for alg, row in newest_active.items()}
        jwks = {"keys": [dict(row.public_jwk) for row in rows]}
        return _Snapshot(signing, jwks, KeySet.import_key_set(jwks), time.monotonic())

    def _private_key(self, row: SigningKey) -> Key:
        key = self._private.get(row.kid)
        if key is None:
            path = _private_path(self._directory, row.kid)
            try:
                key = _import(row.alg, json.loads(path.read_text()))
            except FileNotFoundError as exc:
                raise KeyFileMissing(
                    f"the private key {row.kid} ({row.alg}) is not in IDP_KEYS_DIR "
                    f"({self._directory}): every worker must share that directory") from exc
            self._private[row.kid] = key
        return key

    # The interface the protocol code uses.
    def for_alg(self, alg: str) -> Key:
        return self._current().signing[alg]

    def kid(self, alg: str) -> str:
        return str(self.for_alg(alg).kid or "")

    def public_jwks(self) -> dict[str, Any]:
        return self._current().jwks

    def public_keyset(self) -> KeySet:
        return self._current().keyset
