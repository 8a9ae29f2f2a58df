"""The event log's batches as the database gets them (issue 10): on PostgreSQL each table's
rows go as one JSON parameter, and the drainer keeps a record the database refuses for good
out of the way instead of retrying its whole batch forever."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import event

from idp.event_log import GROUP, REFUSED_STREAM, StreamEventLog, write_records
from idp.store.models import AuditEvent, Disclosure
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


@pytest.mark.postgres
def test_a_record_the_database_refuses_holds_no_other_back(svc, make_student):
    """A disclosure whose account is gone (a foreign key the database enforces) sits in a
    stream batch between good records: they are written, it is kept in the refused stream
    with its error, nothing stays pending, and a flush does not wait for it."""
    log = StreamEventLog(svc.db, svc.store.redis_client(), svc.store)
    redis = svc.store.redis_client()
    stream = svc.store.qualified("events")
    refused_stream = svc.store.qualified(REFUSED_STREAM)
    name = "test.isolated_" + uuid.uuid4().hex[:8]
    account = make_student().id
    good = [_audit(name, account) for _ in range(5)] + [_disclosure(account)]
    orphan = _disclosure("no-such-account-" + uuid.uuid4().hex[:8])
    log._ensure_group()
    for record in [*good[:3], orphan, *good[3:]]:
        redis.xadd(stream, {"r": json.dumps(record)})
    started = time.monotonic()
    log.flush(timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert len(_audits(svc, name)) == 5
    assert len(_disclosures(svc, [good[-1]["id"], orphan["id"]])) == 1
    kept = [fields for _id, fields in redis.xrange(refused_stream)
            if json.loads(fields[b"r"])["id"] == orphan["id"]]
    assert len(kept) == 1 and kept[0][b"error"].startswith(b"IntegrityError")
    assert int(redis.xpending(stream, GROUP)["pending"]) == 0
    log.close()
