"""The per-process client cache and the event log (issue 10): fast, and never stale or lossy
where it matters.

With PostgreSQL + Redis, two app instances share the database and Redis as two provider
processes do: a change made through one is seen by the other at once, and an SSO flow's
records reach the database even when the process that read them died.
"""

from __future__ import annotations

import time
import uuid

import pytest

from idp.clients.cache import ClientCache
from idp.event_log import CLAIM_IDLE_MS, GROUP, StreamEventLog, write_records
from idp.store.bus import LocalBus, RedisBus, Subscriber
from idp.store.models import AuditEvent, Client, Disclosure
from tests.conftest import BACKEND, REDIS_URL, Browser, build_app, query_of, redeem

POSTGRES = BACKEND == "postgres"


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def second_instance(app, settings_overrides):
    """Another provider process's app on the same database and Redis namespace (tests that
    use it are marked ``postgres``: the SQLite pass deselects them)."""
    # The same Redis spelled another way: a bus of its own, as another process has (apps
    # of one process on one database and Redis share theirs), so changes cross via Redis.
    redis_url = settings_overrides["redis_url"].replace("127.0.0.1", "localhost", 1)
    assert redis_url != settings_overrides["redis_url"]
    other = build_app({**settings_overrides, "redis_url": redis_url}, migrate=False)
    assert other.extensions["mynagate"].bus is not app.extensions["mynagate"].bus
    other.extensions["mynagate"].store._p = app.extensions["mynagate"].store._p
    yield other
    other.extensions["mynagate"].events.close()
    other.extensions["mynagate"].bus.close()
    other.extensions["mynagate"].db.dispose()


# ----------------------------------------------------------------------------- the cache
def _settle(svc) -> None:
    """Wait until the bus is listening and has delivered what was published so far (the
    rp's own registration, say): a late message or the first connection's gap would drop
    the cache in the middle of a test. Messages on one channel arrive in order."""
    assert getattr(svc.bus, "wait_connected", lambda: True)()
    marker = "settle-" + uuid.uuid4().hex
    heard: list[str] = []
    svc.bus.subscribe("clients", Subscriber(heard.append, lambda: None))
    svc.bus.publish("clients", marker)
    assert _wait(lambda: heard.count(marker) >= (2 if POSTGRES else 1))


def test_a_cached_client_is_read_from_the_database_once(svc, rp):
    from sqlalchemy import event

    _settle(svc)
    svc.clients.forget_all()
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM clients" in statement:  # the event log's drainer may write meanwhile
            statements.append(1)

    for engine in svc.db.engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert svc.clients.get(rp.client_id).client_id == rp.client_id
    finally:
        for engine in svc.db.engines:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1


def test_unknown_client_ids_are_not_cached(svc):
    """A hostile caller sending random client ids must not fill the process's memory."""
    before = len(svc.clients._entries)
    for _ in range(50):
        assert svc.clients.get(uuid.uuid4().hex) is None
    assert len(svc.clients._entries) == before
    assert svc.clients.get("x" * 65) is None and svc.clients.get("") is None


def test_a_change_committed_anywhere_drops_the_cached_row(svc, rp):
    assert svc.clients.get(rp.client_id).enabled
    with svc.db.session() as db:  # not through the registry: any writer counts
        db.get(Client, rp.client_id).enabled = False
    assert svc.clients.get(rp.client_id).enabled is False


def test_a_rolled_back_change_publishes_nothing(svc, rp):
    heard: list[str] = []
    svc.bus.subscribe("clients", Subscriber(heard.append, lambda: None))
    _settle(svc)
    heard.clear()
    with pytest.raises(RuntimeError), svc.db.session() as db:
        db.get(Client, rp.client_id).name = "never"
        db.flush()
        raise RuntimeError("abort")
    _settle(svc)
    assert rp.client_id not in heard
    assert svc.clients.get(rp.client_id).name != "never"


def test_a_load_racing_an_invalidation_is_not_stored(app, rp):
    """A reader that loaded the old row before a change was heard must not put it back."""
    svc = app.extensions["mynagate"]
    cache = ClientCache(svc.db, LocalBus())
    original_session = svc.db.read

    class Racing:
        def __enter__(self):
            self.inner = original_session()
            db = self.inner.__enter__()
            cache.forget(rp.client_id)  # a change is heard while this load runs
            return db

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    cache._db = type("DB", (), {"read": lambda self: Racing()})()
    assert cache.get(rp.client_id) is not None
    assert rp.client_id not in cache._entries


def test_entries_expire_on_their_own(app, rp):
    now = [1000.0]
    cache = ClientCache(app.extensions["mynagate"].db, LocalBus(), ttl=60,
                        clock=lambda: now[0])
    cache.get(rp.client_id)
    assert rp.client_id in cache._entries
    now[0] += 61
    with app.extensions["mynagate"].db.session() as db:
        db.get(Client, rp.client_id).name = "renamed behind the bus's back"
    # (this cache listens on its own LocalBus, so only the TTL can save it)
    assert cache.get(rp.client_id).name == "renamed behind the bus's back"


@pytest.mark.postgres
def test_a_client_disabled_on_one_instance_is_refused_on_the_other(
        app, second_instance, browser, rp, student):
    """A hostile app an admin has just disabled must not go on working on another process
    that cached it."""
    other_svc = second_instance.extensions["mynagate"]
    assert other_svc.bus.wait_connected()
    assert other_svc.clients.get(rp.client_id).enabled  # cached over there
    query, verifier = browser.sign_in_and_authorize(rp, student)
    with app.extensions["mynagate"].db.session() as db:
        db.get(Client, rp.client_id).enabled = False
    assert _wait(lambda: rp.client_id not in other_svc.clients._entries)
    other = second_instance.test_client()
    assert redeem(other, rp, query["code"], verifier).status_code == 401


@pytest.mark.postgres
def test_an_account_locked_on_one_instance_is_refused_on_the_other(
        app, second_instance, rp, student):
    """Someone who knows a child's password signed in on one process; the school locks the
    account on another. The first process cached the account: it must stop honouring it
    at once (its session, a code issued before the lock, a fresh authorize)."""
    from idp.store.models import Account

    other_svc = second_instance.extensions["mynagate"]
    assert other_svc.bus.wait_connected()
    there = Browser(second_instance.test_client())
    query, verifier = there.sign_in_and_authorize(rp, student)
    assert other_svc.accounts.active(student.id) is not None  # cached over there
    with app.extensions["mynagate"].db.session() as db:
        db.get(Account, student.id).locked = True
    try:
        assert _wait(lambda: student.id not in other_svc.accounts._entries)
        response = redeem(there.c, rp, query["code"], verifier)
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_grant"
        again, _ = there.authorize(rp, prompt="none")
        assert query_of(again.headers["Location"])["error"] == "login_required"
    finally:
        with app.extensions["mynagate"].db.session() as db:
            db.get(Account, student.id).locked = False


@pytest.mark.postgres
def test_a_consent_withdrawn_on_one_instance_is_asked_again_on_the_other(
        app, second_instance, rp, student):
    """A guardian withdraws an app's consent on one process: another process that cached
    the consent must not go on handing that app the child's data silently."""
    from sqlalchemy import delete

    from idp.store.models import Consent

    other_svc = second_instance.extensions["mynagate"]
    assert other_svc.bus.wait_connected()
    there = Browser(second_instance.test_client())
    there.sign_in_and_authorize(rp, student)
    assert other_svc.consents.scopes(student.id, rp.client_id)  # cached over there
    silent, _ = there.authorize(rp, prompt="none")
    assert "code" in query_of(silent.headers["Location"])
    with app.extensions["mynagate"].db.session() as db:
        db.execute(delete(Consent).where(Consent.account_id == student.id,
                                         Consent.client_id == rp.client_id))
    assert _wait(lambda: other_svc.consents.scopes(student.id, rp.client_id) is None)
    again, _ = there.authorize(rp, prompt="none")
    assert query_of(again.headers["Location"])["error"] == "consent_required"


@pytest.mark.postgres
def test_a_bus_gap_drops_everything(app, rp):
    """After a disconnection (messages may have been missed) every entry goes."""
    import redis

    svc = app.extensions["mynagate"]
    # Its own named connection, so only this bus is cut off (not the other test workers').
    name = "gap-test-" + uuid.uuid4().hex[:12]
    client = redis.Redis.from_url(REDIS_URL, client_name=name)
    bus = RedisBus(client, reconnect_delay=0.05)
    cache = ClientCache(svc.db, bus)
    assert bus.wait_connected()
    cache.get(rp.client_id)
    assert rp.client_id in cache._entries
    ids = [c["id"] for c in client.client_list(_type="pubsub") if c["name"] == name]
    assert len(ids) == 1
    client.client_kill_filter(_id=ids[0])
    assert _wait(lambda: rp.client_id not in cache._entries)
    bus.close()


@pytest.mark.postgres
def test_the_last_app_to_close_a_shared_bus_stops_it(app, settings_overrides):
    """Apps of one process share a bus per database and Redis; one closing leaves the
    others listening, and the last one stops the listener (no thread outlives them)."""
    # Another Redis database than the session app's: a bus of its own to count.
    elsewhere = {**settings_overrides, "redis_url": REDIS_URL.rsplit("/", 1)[0] + "/11"}
    first = build_app(elsewhere, migrate=False)
    second = build_app(elsewhere, migrate=False)
    bus = first.extensions["mynagate"].bus
    assert second.extensions["mynagate"].bus is bus
    assert bus is not app.extensions["mynagate"].bus
    assert bus.wait_connected()
    first.extensions["mynagate"].bus.close()
    assert not bus._stop.is_set()
    second.extensions["mynagate"].bus.close()
    assert bus._stop.is_set()
    third = build_app(elsewhere, migrate=False)
    assert third.extensions["mynagate"].bus is not bus  # a fresh one, listening again
    assert third.extensions["mynagate"].bus.wait_connected()
    for each in (first, second, third):
        each.extensions["mynagate"].events.close()
    third.extensions["mynagate"].bus.close()


# ----------------------------------------------------------------------------- event log
def _stream_log(svc) -> StreamEventLog:
    return StreamEventLog(svc.db, svc.store.redis_client(), svc.store)


def _audits(svc, key_prefix: str) -> list[AuditEvent]:
    with svc.db.session() as db:
        return [r for r in db.query(AuditEvent).filter(AuditEvent.event == key_prefix)]


@pytest.mark.postgres
def test_records_reach_the_database_without_a_flush(svc):
    log = _stream_log(svc)
    event = "test.drained_" + uuid.uuid4().hex[:8]
    log.audit(event, account_id=None, client_id="c", detail=1)
    assert _wait(lambda: len(_audits(svc, event)) == 1)
    row = _audits(svc, event)[0]
    assert row.details == {"detail": 1} and row.event_key
    log.close()


@pytest.mark.postgres
def test_a_crashed_readers_records_are_claimed_and_written_once(svc):
    """A process read records and died before writing them: another takes them over. A
    process that wrote them and died before acknowledging: the replay writes nothing new."""
    log = _stream_log(svc)
    redis = svc.store.redis_client()
    stream = svc.store.qualified("events")
    log._ensure_group()
    event = "test.abandoned_" + uuid.uuid4().hex[:8]
    record = {"kind": "audit", "event_key": uuid.uuid4().hex, "at": "2026-12-02T08:00:00",
              "event": event, "outcome": "ok", "account_id": None, "client_id": None,
              "details": {}}
    import json

    redis.xadd(stream, {"r": json.dumps(record)})
    # A dead consumer read it (it is pending there) and never acknowledged it.
    redis.xreadgroup(GROUP, "dead-consumer", {stream: ">"}, count=100)
    # ... and had even written it before dying: the replay must not double it.
    write_records(svc.db, [record])
    assert len(_audits(svc, event)) == 1
    log.flush(timeout=0.2)  # takes over what stays pending past the timeout
    assert len(_audits(svc, event)) == 1
    assert int(redis.xpending(stream, GROUP)["pending"]) == 0
    assert CLAIM_IDLE_MS >= 10_000  # a slow writer is not robbed of its batch at once
    log.close()


@pytest.mark.postgres
def test_records_are_written_at_once_when_redis_is_away(svc):
    """Redis refuses the record: it goes to the database in the request, never dropped."""
    log = _stream_log(svc)

    class Down:
        def xgroup_create(self, *args, **kwargs):
            raise ConnectionError("redis is away")

        xadd = xgroup_create

    log._r = Down()
    event = "test.direct_" + uuid.uuid4().hex[:8]
    log.audit(event)
    log.disclosure(account_id=_any_account(svc), client_id="c-direct", claims=["name"],
                   via="userinfo")
    assert len(_audits(svc, event)) == 1
    with svc.db.session() as db:
        assert db.query(Disclosure).filter_by(client_id="c-direct").count() == 1


def _any_account(svc) -> str:
    from idp.store.models import Account

    with svc.db.session() as db:
        return db.query(Account.id).first()[0]


def test_an_sso_flows_records_are_on_the_students_page(browser, make_rp, make_student, svc):
    """The student's page flushes first: what the app received a moment ago is listed."""
    rp = make_rp(name="記録アプリ", scopes=["openid", "profile"])
    student = make_student()
    query, verifier = browser.sign_in_and_authorize(rp, student, scope="openid profile")
    assert redeem(browser.c, rp, query["code"], verifier).status_code == 200
    page = browser.c.get("/account/").get_data(as_text=True)
    assert "記録アプリ" in page
    with svc.db.session() as db:
        assert db.query(Disclosure).filter_by(account_id=student.id,
                                              client_id=rp.client_id).count() == 1
        events = {e for (e,) in db.query(AuditEvent.event).filter_by(
            account_id=student.id, client_id=rp.client_id)}
    assert {"authorize.code_issued", "token.issued"} <= events


def test_an_account_change_drops_only_that_accounts_consents():
    """Consents are keyed (account, client) and dropped by the account's id through an
    index, not by scanning every entry; eviction keeps the index in step."""
    from idp.store.row_cache import RowCache

    loads: list = []
    cache = RowCache("consents-test", LocalBus(), lambda key: loads.append(key) or "ok",
                     max_entries=3)
    for key in [("a", "x"), ("a", "y"), ("b", "x")]:
        cache.get(key)
    cache.forget_matching("a")
    assert list(cache._entries) == [("b", "x")]
    assert "a" not in cache._by_first
    cache.get(("b", "x"))
    assert loads.count(("b", "x")) == 1  # still cached
    for key in [("c", "1"), ("d", "1"), ("e", "1")]:  # evicts ("b", "x") at the limit
        cache.get(key)
    assert ("b", "x") not in cache._entries and "b" not in cache._by_first
    assert set(cache._by_first) == {"c", "d", "e"}
