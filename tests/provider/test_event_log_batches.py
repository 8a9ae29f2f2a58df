"""The event log's batches as the database gets them (issue 10): on PostgreSQL each table's
rows go as one JSON parameter, and the drainer keeps a record the database refuses for good
out of the way instead of retrying its whole batch forever."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

import idp.event_log
from idp.event_log import GROUP, StreamEventLog, _refused_for_good, write_records
from idp.store.models import AuditEvent, Disclosure, RefusedEvent
from tests.conftest import BACKEND

POSTGRES = BACKEND == "postgres"


def _audit(event_name: str, account_id: str | None, **changes) -> dict:
    return {"kind": "audit", "event_key": uuid.uuid4().hex, "at": "2026-12-02T08:00:00.123456",
            "event": event_name, "outcome": "ok", "account_id": account_id,
            "client_id": "c-batch", "actor": None, "school_id": None, "ip": None,
            "details": {}, **changes}


def _disclosure(account_id: str, **changes) -> dict:
    return {"kind": "disclosure", "id": uuid.uuid4().hex, "at": "2026-12-02T08:00:01",
            "account_id": account_id, "client_id": "c-batch", "claims": ["name", "grade"],
            "via": "id_token", **changes}


def _columns(row: AuditEvent) -> tuple:
    return (row.event_key, row.at.isoformat(), row.event, row.outcome, row.actor,
            row.account_id, row.school_id, row.client_id, row.ip, row.details)


def _expected(record: dict) -> tuple:
    return (record["event_key"], record["at"], record["event"], record["outcome"],
            record["actor"], record["account_id"], record["school_id"], record["client_id"],
            record["ip"], record["details"])


def _audits(svc, event_name: str) -> list[AuditEvent]:
    with svc.db.session() as db:
        return db.query(AuditEvent).filter(AuditEvent.event == event_name).all()


def _disclosures(svc, ids: list[str]) -> list[tuple]:
    with svc.db.session() as db:
        return sorted((d.id, d.at.isoformat(), d.account_id, d.client_id, d.claims, d.via)
                      for d in db.query(Disclosure).filter(Disclosure.id.in_(ids)))


def _statements(svc) -> list[str]:
    seen: list[str] = []
    for engine in svc.db.engines:
        event.listen(engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


def test_a_batch_of_both_kinds_is_written_once_with_every_column(svc, make_student):
    """Every column as recorded (Japanese and quoted text, nested details, NULLs), each
    kind into its own table, and a replay of the same batch writes nothing new."""
    name = "test.batch_" + uuid.uuid4().hex[:8]
    account = make_student().id
    refused = _audit(name, account, outcome="refused", actor="admin:1", school_id="s-7",
                     ip="192.0.2.7", details={"reason": 'やりなおし "quoted"\n',
                                              "nested": {"n": [1, 2]}})
    kept = _audit(name, None, client_id=None, details={"名前": "テスト"})
    given = _disclosure(account)
    statements = _statements(svc)
    for _ in range(2):
        write_records(svc.db, [refused, given, kept])
    assert sorted(_columns(r) for r in _audits(svc, name)) == sorted(
        [_expected(refused), _expected(kept)])
    assert _disclosures(svc, [given["id"]]) == [
        (given["id"], given["at"], account, "c-batch", ["name", "grade"], "id_token")]
    # On PostgreSQL through the JSON path (one statement per table and batch).
    uses_json = [s for s in statements if "json_to_recordset" in s]
    assert len(uses_json) == (4 if POSTGRES else 0)


def test_a_nul_in_the_details_is_written_as_it_was(svc):
    """U+0000 cannot become PostgreSQL text, so the JSON path refuses it; the batch then
    goes the generic way, which stores it in the JSON column as before."""
    name = "test.nul_" + uuid.uuid4().hex[:8]
    records = [_audit(name, None, details={"s": "a\x00b"}), _audit(name, None)]
    write_records(svc.db, records)
    assert sorted(_columns(r) for r in _audits(svc, name)) == sorted(
        _expected(r) for r in records)


def _refused(svc, key: str) -> list[RefusedEvent]:
    with svc.db.session() as db:
        return db.query(RefusedEvent).filter(RefusedEvent.record_key == key).all()


def _stream(svc):
    log = StreamEventLog(svc.db, svc.store.redis_client(), svc.store)
    log._ensure_group()
    return log, svc.store.redis_client(), svc.store.qualified("events")


@pytest.mark.postgres
def test_a_record_the_database_refuses_holds_no_other_back(svc, make_student):
    """A disclosure whose account is gone (a foreign key the database enforces) sits in a
    stream batch between good records: they are written, it is kept in refused_events with
    its error (once, however often it is replayed), nothing stays pending, and a flush does
    not wait for it."""
    log, redis, stream = _stream(svc)
    name = "test.isolated_" + uuid.uuid4().hex[:8]
    account = make_student().id
    good = [_audit(name, account) for _ in range(5)] + [_disclosure(account)]
    orphan = _disclosure("no-such-account-" + uuid.uuid4().hex[:8])
    # An address no real client has: what a forged X-Forwarded-For would leave behind a
    # proxy trusted one hop too many. Too long for its column: kept, and hides nothing.
    forged = _audit(name, account, ip="203.0.113.9, " * 8)
    for record in [*good[:3], orphan, forged, *good[3:]]:
        redis.xadd(stream, {"r": json.dumps(record)})
    started = time.monotonic()
    log.flush(timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert len(_audits(svc, name)) == 5
    assert len(_disclosures(svc, [good[-1]["id"], orphan["id"]])) == 1
    kept = _refused(svc, orphan["id"])
    assert len(kept) == 1 and kept[0].error.startswith("IntegrityError")
    assert json.loads(kept[0].raw) == orphan
    kept = _refused(svc, forged["event_key"])
    assert len(kept) == 1 and kept[0].error.startswith("DataError")
    assert json.loads(kept[0].raw)["ip"] == forged["ip"]
    assert int(redis.xpending(stream, GROUP)["pending"]) == 0
    # Replayed (a crash before the acknowledgement): still kept once.
    log._write_and_ack([("1-1", {b"r": json.dumps(orphan).encode()})])
    assert len(_refused(svc, orphan["id"])) == 1
    log.close()


@pytest.mark.postgres
def test_an_entry_that_is_no_record_is_kept_not_retried(svc):
    """JSON that is not a record (a list), or not JSON: kept with its stream id, the batch's
    records written, nothing left pending."""
    log, redis, stream = _stream(svc)
    name = "test.unreadable_" + uuid.uuid4().hex[:8]
    record = _audit(name, None)
    bad_ids = [redis.xadd(stream, {"r": "[1, 2]"}), redis.xadd(stream, {"r": "{not json"})]
    redis.xadd(stream, {"r": json.dumps(record)})
    log.flush(timeout=2.0)
    assert len(_audits(svc, name)) == 1
    for entry_id in bad_ids:
        key = "entry:" + (entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
        assert len(_refused(svc, key)) == 1
    assert int(redis.xpending(stream, GROUP)["pending"]) == 0
    log.close()


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("error", "for_good"), [
    (DataError("s", {}, _Orig("22001")), True),       # a value too long for its column
    (DataError("s", {}, _Orig("22P05")), True),       # U+0000 into text
    (IntegrityError("s", {}, _Orig("23503")), True),  # the record's account is gone
    (IntegrityError("s", {}, _Orig("23505")), False),  # e.g. a sequence behind its table
    (IntegrityError("s", {}, _Orig("23502")), False),  # a NOT NULL a migration added
    (IntegrityError("s", {}, _Orig("23514")), False),  # a CHECK a migration added
    (OperationalError("s", {}, _Orig("40001")), False),  # a serialization failure
    (KeyError("event_key"), True), (ValueError("at"), True)])
def test_only_a_records_own_data_counts_as_refused_for_good(error, for_good):
    assert _refused_for_good(error) is for_good


@pytest.mark.postgres
def test_an_error_every_record_meets_is_retried_never_kept(svc, monkeypatch):
    """A constraint every row breaks (a sequence left behind by a restore, a new NOT
    NULL): nothing is acknowledged or moved to refused_events; once it is fixed the same
    entries are written."""
    log, redis, stream = _stream(svc)
    name = "test.systemic_" + uuid.uuid4().hex[:8]
    records = [_audit(name, None) for _ in range(3)]
    for record in records:
        redis.xadd(stream, {"r": json.dumps(record)})
    real = idp.event_log.write_records

    def every_row_refused(*_args, **_kwargs):
        raise IntegrityError("INSERT", {}, _Orig("23505"))

    monkeypatch.setattr(idp.event_log, "write_records", every_row_refused)
    with pytest.raises(IntegrityError):
        log._drain_once(block_ms=None, consumer="c1")
    assert int(redis.xpending(stream, GROUP)["pending"]) == 3
    assert all(not _refused(svc, r["event_key"]) for r in records)
    monkeypatch.setattr(idp.event_log, "write_records", real)
    log.flush(timeout=0.2)  # takes the pending entries over and writes them
    assert len(_audits(svc, name)) == 3
    assert int(redis.xpending(stream, GROUP)["pending"]) == 0
    log.close()
