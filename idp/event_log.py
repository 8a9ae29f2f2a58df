"""The records an SSO flow writes on its way (an audit event for each code and token, the
disclosure history the student sees), kept off the request path without ever being lost.

An SSO flow used to commit three extra rows in three transactions of its own. With Redis,
each record is one ``XADD`` to a Redis stream instead; a drainer thread in every process
reads the stream through a consumer group, writes what it read in one transaction and only
then acknowledges it. So:

- a process that dies between reading and writing leaves its entries *pending*; another
  process claims them after :data:`CLAIM_IDLE_MS` and writes them (never lost);
- a process that dies between writing and acknowledging has them written twice at most,
  and each record carries its own key (``AuditEvent.event_key``, the disclosure's id), so
  the second insert is skipped (never doubled);
- when Redis cannot take the record, it is written to the database at once, as before;
- a record the database refuses for its own data (a value its column cannot hold, an
  account deleted first) is kept in ``refused_events`` with the error and the rest of its
  batch is written; any other error is retried with the whole batch (never lost);
- a reader that must see everything (the audit log, the student's page) calls
  :meth:`StreamEventLog.flush` first.

Only records that describe a *successful* step go here. Refusals and revocations stay in
the transaction of the change they describe (``idp.audit.audit``).

The embedded default (SQLite, no Redis) writes at once: :class:`DirectEventLog`.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError

from idp.store.db import dialect_insert
from idp.store.models import AuditEvent, Disclosure, RefusedEvent, utcnow

log = structlog.get_logger("audit")
GROUP = "writers"
CLAIM_IDLE_MS = 30_000
BATCH = 500
GATHER_SECONDS = 0.25
#: SQLSTATEs that a record's own values cause, every time it is written: class 22 (a
#: value the column cannot hold) and 23503 (its account is gone). Such a record is kept in
#: ``refused_events`` and the rest of its batch written. Every other error is retried with
#: the batch as it is, however long it lasts: a constraint a migration added, a sequence
#: behind its table after a restore, an outage -- those refuse every record, and must not
#: turn a whole stream into refusals.
_PER_RECORD_SQLSTATES = ("22", "23503")


def _refused_for_good(exc: Exception) -> bool:
    if isinstance(exc, (KeyError, ValueError, TypeError)):
        return True  # the record's shape (a missing key, an unreadable timestamp)
    if isinstance(exc, (DataError, IntegrityError)):
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
        return sqlstate.startswith(_PER_RECORD_SQLSTATES)
    return False


class EventLog(Protocol):
    def audit(self, event: str, *, outcome: str = "ok", account_id: str | None = None,
              client_id: str | None = None, lost_with_batch: bool = False,
              **details: Any) -> None: ...
    def disclosure(self, *, account_id: str, client_id: str, claims: list[str],
                   via: str) -> None: ...
    def flush(self, timeout: float = 5.0) -> None: ...
    def close(self) -> None: ...


_AUDIT_COLUMNS = ("actor", "school_id", "ip")


def _audit_record(event: str, outcome: str, account_id: str | None, client_id: str | None,
                  details: dict[str, Any]) -> dict[str, Any]:
    # The structured log line goes out now, from the request (with its request id).
    log.info(event, outcome=outcome, account_id=account_id, client_id=client_id, **details)
    # What the audit table keeps in columns (the admin home counts by school) leaves the
    # details for its column, as idp.audit.audit writes it.
    columns = {name: details.pop(name, None) for name in _AUDIT_COLUMNS}
    return {"kind": "audit", "event_key": uuid.uuid4().hex, "at": utcnow().isoformat(),
            "event": event, "outcome": outcome, "account_id": account_id,
            "client_id": client_id, "details": details, **columns}


def _disclosure_record(account_id: str, client_id: str, claims: list[str], via: str
                       ) -> dict[str, Any]:
    return {"kind": "disclosure", "id": uuid.uuid4().hex, "at": utcnow().isoformat(),
            "account_id": account_id, "client_id": client_id, "claims": list(claims),
            "via": via}


def write_records(database: Any, records: list[dict[str, Any]], *,
                  via_json: bool = True) -> None:
    """Insert records in one transaction, skipping any already written (same key)."""
    audits = [_audit_row(r) for r in records if r["kind"] == "audit"]
    disclosures = [_disclosure_row(r) for r in records if r["kind"] == "disclosure"]
    if via_json and database.engine.dialect.name == "postgresql":
        try:
            _write_as_json(database, audits, disclosures)
            return
        except (DataError, IntegrityError):
            # A value the JSON path cannot carry and a bound parameter can (U+0000 in the
            # details: PostgreSQL will not turn it into text), or a row the database
            # refuses anyway (then the path below raises it for the drainer to isolate).
            pass
    insert = dialect_insert(database.engine.dialect.name)
    # One statement each, executed with many parameter sets: its compiled form is cached
    # (a VALUES list built per batch was compiled anew every time), and SQLAlchemy still
    # sends the rows in multi-row batches.
    with database.session() as db:
        if audits:
            db.execute(insert(AuditEvent.__table__)
                       .on_conflict_do_nothing(index_elements=["event_key"]), audits)
        if disclosures:
            db.execute(insert(Disclosure.__table__)
                       .on_conflict_do_nothing(index_elements=["id"]), disclosures)


# On PostgreSQL each table's rows go as ONE JSON parameter (json_to_recordset reads the
# keys named in its column list), parsed by the database in C. The same batch through
# SQLAlchemy's executemany took ~43 us of the drainer's CPU per record (bind processing per
# value) -- in the serving process, holding its interpreter ~7 ms per batch of 160 -- and
# takes ~5 us this way. The rows are built and checked as for the generic path first
# (every key present, ``at`` a timestamp); the column types are the tables'
# (models.AuditEvent, models.Disclosure), ``at`` naive UTC.
_AUDITS_FROM_JSON = text("""
    INSERT INTO audit_events (event_key, at, event, outcome, actor, account_id, school_id,
                              client_id, ip, details)
    SELECT event_key, at, event, outcome, actor, account_id, school_id, client_id, ip,
           details
    FROM json_to_recordset(CAST(:rows AS json)) AS r(
        event_key varchar(32), at timestamp, event varchar(64), outcome varchar(16),
        actor varchar(64), account_id varchar(32), school_id varchar(32),
        client_id varchar(64), ip varchar(64), details json)
    ON CONFLICT (event_key) DO NOTHING""")
_DISCLOSURES_FROM_JSON = text("""
    INSERT INTO disclosures (id, at, account_id, client_id, claims, via)
    SELECT id, at, account_id, client_id, claims, via
    FROM json_to_recordset(CAST(:rows AS json)) AS r(
        id varchar(32), at timestamp, account_id varchar(32), client_id varchar(64),
        claims json, via varchar(32))
    ON CONFLICT (id) DO NOTHING""")


def _write_as_json(database: Any, audits: list[dict[str, Any]],
                   disclosures: list[dict[str, Any]]) -> None:
    with database.session() as db:
        if audits:
            db.execute(_AUDITS_FROM_JSON, {"rows": _json_rows(audits)})
        if disclosures:
            db.execute(_DISCLOSURES_FROM_JSON, {"rows": _json_rows(disclosures)})


def _json_rows(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, default=_naive_utc_iso)


def _naive_utc_iso(value: Any) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"{type(value).__name__} is not JSON")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


def _audit_row(record: dict[str, Any]) -> dict[str, Any]:
    return {"event_key": record["event_key"], "at": datetime.fromisoformat(record["at"]),
            "event": record["event"], "outcome": record["outcome"],
            "actor": record.get("actor"), "account_id": record["account_id"],
            "school_id": record.get("school_id"), "client_id": record["client_id"],
            "ip": record.get("ip"), "details": record["details"]}


def _disclosure_row(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "at": datetime.fromisoformat(record["at"]),
            "account_id": record["account_id"], "client_id": record["client_id"],
            "claims": record["claims"], "via": record["via"]}


def _keep_refused(database: Any, refused: list[tuple[Any, dict[str, Any], Exception]]
                  ) -> None:
    """Keep records the database refused (the drainer's), each once, with the error."""
    rows = []
    for raw, record, exc in refused:
        key = record.get("event_key") or record.get("id")
        rows.append({"record_key": str(key)[:64] if key else None, "raw": _text(raw),
                     "error": f"{type(exc).__name__}: {exc}"[:300], "at": utcnow()})
        log.error("event_log_record_refused", recorded=record.get("event"),
                  record_key=rows[-1]["record_key"], error=type(exc).__name__)
    insert = dialect_insert(database.engine.dialect.name)
    with database.session() as db:
        db.execute(insert(RefusedEvent.__table__)
                   .on_conflict_do_nothing(index_elements=["record_key"]), rows)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return "" if value is None else str(value)


class DirectEventLog:
    """Every record written at once, in a transaction of its own (one process, SQLite)."""

    def __init__(self, database: Any) -> None:
        self._db = database

    def audit(self, event: str, *, outcome: str = "ok", account_id: str | None = None,
              client_id: str | None = None, lost_with_batch: bool = False,
              **details: Any) -> None:
        # (Beside the in-process store, whose batches cannot fail: lost_with_batch changes
        # nothing here.)
        write_records(self._db, [_audit_record(event, outcome, account_id, client_id,
                                               details)])

    def disclosure(self, *, account_id: str, client_id: str, claims: list[str],
                   via: str) -> None:
        write_records(self._db, [_disclosure_record(account_id, client_id, claims, via)])

    def flush(self, timeout: float = 5.0) -> None:
        return None

    def close(self) -> None:
        return None


def _left_to_redis(record: dict[str, Any]) -> None:
    # The request's log already has the event's line. Its batch's answer was lost: if Redis
    # took the batch, the drainer records the event with what it records; if not, neither
    # happened. Never written from here, which could record something that did not happen.
    # (structlog's own first argument is named "event": the record's goes as "recorded".)
    log.warning("event_recorded_only_with_its_batch", recorded=record.get("event"),
                event_key=record.get("event_key"))


class StreamEventLog:
    """Records through a Redis stream, written in batches by a drainer thread."""

    def __init__(self, database: Any, redis_client: Any, store: Any) -> None:
        self._db = database
        self._r = redis_client
        self._store = store
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._group_ready = False

    @property
    def _stream(self) -> str:
        # Read each time: the store's key prefix is the namespace (tests give each run one).
        return self._store.qualified("events")

    # -- emitting (the request path)
    def audit(self, event: str, *, outcome: str = "ok", account_id: str | None = None,
              client_id: str | None = None, lost_with_batch: bool = False,
              **details: Any) -> None:
        """``lost_with_batch``: the event records what the open store batch does (a code
        stored): it goes with that batch and nowhere else, so that it is recorded exactly
        when what it records happened (any other event of a batch Redis did not answer is
        written to the database at once)."""
        self._emit(_audit_record(event, outcome, account_id, client_id, details),
                   lost_with_batch=lost_with_batch)

    def disclosure(self, *, account_id: str, client_id: str, claims: list[str],
                   via: str) -> None:
        self._emit(_disclosure_record(account_id, client_id, claims, via))

    def _emit(self, record: dict[str, Any], *, lost_with_batch: bool = False) -> None:
        entry = {"r": json.dumps(record, ensure_ascii=False)}
        # Inside a store batch the XADD is sent with the batch; if the batch cannot be
        # sent, the record is written to the database then (written twice is written once:
        # the event's key is unique), or, for an event of the batch's own doing, left to
        # what Redis took.
        in_batch = self._store.on_batch_failure(functools.partial(
            _left_to_redis if lost_with_batch else self._write_now, record))
        try:
            self._ensure_group()
        except Exception as exc:  # noqa: BLE001 - Redis away just now
            if not in_batch:
                log.warning("event_log_direct_write", error=str(exc)[:200])
                self._write_now(record)
                return
            # In a batch the entry still goes with it, never around it: the drainer makes
            # the group (from id 0, so it reads this entry too).
            log.warning("event_log_group_not_ready", error=str(exc)[:200])
        try:
            self._store.writer().xadd(self._stream, entry)
        except Exception as exc:  # noqa: BLE001 - (no batch) Redis cannot take it: write it now
            log.warning("event_log_direct_write", error=str(exc)[:200])
            self._write_now(record)
            return
        self._ensure_drainer()

    def _write_now(self, record: dict[str, Any]) -> None:
        write_records(self._db, [record])

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From id 0: entries left by processes that ran before are written too.
            self._r.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _ensure_drainer(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # Started lazily, so each gunicorn worker starts its own after the fork.
                self._thread = threading.Thread(target=self._drain_forever, daemon=True,
                                                name="mynagate-event-log")
                self._thread.start()

    # -- draining
    def _drain_forever(self) -> None:
        last_claim = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_claim > CLAIM_IDLE_MS / 1000:
                    last_claim = time.monotonic()
                    self._claim_abandoned()
                if self._drain_once(block_ms=1000, consumer=self._consumer) < BATCH:
                    # Let records gather: one transaction then writes many (a quiet
                    # moment costs this much delay; readers flush and never wait for it).
                    self._stop.wait(GATHER_SECONDS)
            except Exception as exc:  # noqa: BLE001 - Redis or the database away: retry
                self._group_ready = False
                log.warning("event_log_drain_failed", error=str(exc)[:200])
                self._stop.wait(1.0)

    def _drain_once(self, *, block_ms: int | None, consumer: str) -> int:
        self._ensure_group()
        answer = self._r.xreadgroup(GROUP, consumer, {self._stream: ">"}, count=BATCH,
                                    block=block_ms)
        entries = answer[0][1] if answer else []
        self._write_and_ack(entries)
        return len(entries)

    def _claim_abandoned(self) -> None:
        """Entries another process read and never acknowledged (it died): ours now."""
        self._ensure_group()
        start = "0-0"
        while True:
            answer = self._r.xautoclaim(self._stream, GROUP, self._consumer,
                                        min_idle_time=CLAIM_IDLE_MS, start_id=start,
                                        count=BATCH)
            start, entries = answer[0], answer[1]
            self._write_and_ack([e for e in entries if e and e[1]])
            if start in (b"0-0", "0-0") or not entries:
                return

    def _write_and_ack(self, entries: list[Any]) -> None:
        if not entries:
            return
        readable, refused = [], []
        for entry_id, fields in entries:
            raw = fields.get(b"r") or fields.get("r")
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise TypeError(f"a {type(record).__name__}, not a record")
                readable.append((raw, record))
            except (TypeError, ValueError) as exc:  # kept (and logged) as refused
                refused.append((raw, {"event_key": f"entry:{_text(entry_id)}"}, exc))
        refused += self._write_isolating(readable)
        if refused:
            _keep_refused(self._db, refused)
        ids = [entry_id for entry_id, _ in entries]
        # Acknowledged only after the commit (and the refused records' own): a crash before
        # this line means a replay, which the records' own keys make harmless.
        pipe = self._r.pipeline(transaction=True)
        pipe.xack(self._stream, GROUP, *ids)
        pipe.xdel(self._stream, *ids)
        pipe.execute()

    def _write_isolating(self, readable: list[tuple[Any, dict[str, Any]]], *,
                         first: bool = True
                         ) -> list[tuple[Any, dict[str, Any], Exception]]:
        """Write the records; if the database refuses the batch for one record's data
        (:func:`_refused_for_good`), write each half alone, down to the records it
        refuses one by one: those are returned. Anything else is raised, and the batch is
        retried as it is. Below the first try the halves skip the JSON path (which would
        fail the same way and then fall back)."""
        if not readable:
            return []
        try:
            write_records(self._db, [record for _, record in readable], via_json=first)
            return []
        except Exception as exc:
            if not _refused_for_good(exc):
                raise
            if len(readable) == 1:
                return [(*readable[0], exc)]
        half = len(readable) // 2
        return (self._write_isolating(readable[:half], first=False)
                + self._write_isolating(readable[half:], first=False))

    def flush(self, timeout: float = 5.0) -> None:
        """Write everything emitted so far before returning (readers call this first).

        Drains what nobody has read yet, then waits for what another consumer is writing
        right now; entries a dead process left pending longer than ``timeout`` are taken
        over."""
        try:
            self._ensure_group()
            while self._drain_once(block_ms=None, consumer=self._consumer):
                pass
            deadline = time.monotonic() + timeout
            while int(self._r.xpending(self._stream, GROUP)["pending"]) > 0:
                if time.monotonic() > deadline:
                    self._take_over_pending()
                    return
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - a reader still gets what is written
            log.warning("event_log_flush_failed", error=str(exc)[:200])

    def _take_over_pending(self) -> None:
        answer = self._r.xautoclaim(self._stream, GROUP, self._consumer, min_idle_time=0,
                                    start_id="0-0", count=BATCH)
        self._write_and_ack([e for e in answer[1] if e and e[1]])

    def close(self) -> None:
        self._stop.set()


def open_event_log(database: Any, store: Any) -> EventLog:
    client = getattr(store, "redis_client", None)
    if not callable(client):
        return DirectEventLog(database)
    return StreamEventLog(database, client(), store)
