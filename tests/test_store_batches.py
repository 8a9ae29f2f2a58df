"""The short-lived store's write-behind batches (ShortLivedStore.batched): the writes a
token grant makes after its commit go to Redis in one round trip, and when Redis cannot
take them every fallback still runs."""

from __future__ import annotations

import socket

import pytest

from idp.store.shortlived import RedisStore, StoreUnavailable


def test_writes_inside_a_batch_land_when_it_ends_nested_ones_with_the_outer(any_store):
    with any_store.batched():
        any_store.put("a", {"n": 1}, 60)
        with any_store.batched():
            any_store.put("b", {"n": 2}, 60)
    assert any_store.get("a") == {"n": 1} and any_store.get("b") == {"n": 2}


def test_a_batch_is_sent_even_when_its_block_raised(any_store):
    with pytest.raises(RuntimeError), any_store.batched():
        any_store.put("kept", {"n": 1}, 60)
        raise RuntimeError("the caller failed after the write")
    assert any_store.get("kept") == {"n": 1}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_when_redis_cannot_take_a_batch_every_fallback_runs_then_it_says_so():
    """One fallback failing (its database away too) does not cost the others theirs."""
    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", prefix="gone:")
    ran: list[str] = []

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("the database is away as well")

    with pytest.raises(StoreUnavailable), store.batched():
        store.put("x", {"n": 1}, 60)
        assert store.on_batch_failure(failing)
        assert store.on_batch_failure(lambda: ran.append("second"))
    assert ran == ["failing", "second"]
    assert not store.on_batch_failure(lambda: None)  # the batch is closed


def test_a_flushing_block_sends_the_outer_blocks_writes_with_its_own_when_it_ends(any_store):
    with any_store.batched():
        any_store.put("outer", {"n": 1}, 60)
        with any_store.batched(flush=True):
            any_store.put("inner", {"n": 2}, 60)
        # Sent already, while the outer block is still open (a read goes to Redis itself).
        assert any_store.get("outer") == {"n": 1} and any_store.get("inner") == {"n": 2}
        any_store.put("after", {"n": 3}, 60)
    assert any_store.get("after") == {"n": 3}


def test_a_flushing_block_that_cannot_be_sent_fails_where_it_ends():
    """Redis away: the failure is raised at the inner block's end, not the outer's, after
    the fallbacks of everything the batch held, the outer block's included."""
    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", prefix="gone:")
    ran: list[str] = []
    reached_after = False
    with store.batched():
        store.put("outer", {"n": 1}, 60)
        store.on_batch_failure(lambda: ran.append("outer"))
        with pytest.raises(StoreUnavailable), store.batched(flush=True):
            store.put("inner", {"n": 2}, 60)
            store.on_batch_failure(lambda: ran.append("inner"))
        reached_after = True
        assert ran == ["outer", "inner"]
    assert reached_after  # the outer block ends with an empty batch: nothing to send


def test_put_if_present_replaces_a_live_record_only(any_store):
    any_store.put("here", {"n": 1}, 60)
    any_store.put_if_present("here", {"n": 2}, 60)
    any_store.put_if_present("gone", {"n": 3}, 60)
    assert any_store.get("here") == {"n": 2} and any_store.get("gone") is None
    with any_store.batched():  # in a batch too: the record deleted before it stays deleted
        any_store.drop("here")
        any_store.put_if_present("here", {"n": 4}, 60)
    assert any_store.get("here") is None


# -- each thread's own connection (RedisStore._here)
def _held_address(store: RedisStore) -> str:
    host, port = store._here().connection._sock.getsockname()[:2]
    return f"{host}:{port}"


def test_a_thread_keeps_its_connection_and_two_threads_hold_two(redis_store):
    import threading

    redis_store.put("k", {"n": 1}, 60)
    first = _held_address(redis_store)
    for _ in range(3):
        assert redis_store.get("k") == {"n": 1}
    assert _held_address(redis_store) == first
    seen: list[str] = []
    other = threading.Thread(target=lambda: (redis_store.get("k"),
                                             seen.append(_held_address(redis_store))))
    other.start()
    other.join(10)
    assert seen and seen[0] != first


def test_a_connection_the_server_closed_is_replaced_and_the_call_still_answers(redis_store):
    """Redis closes idle connections (its ``timeout``), and a restart closes them all: the
    next call on the thread's connection is still answered, not a 503."""
    import redis

    from tests.conftest import REDIS_URL

    redis_store.put("k", {"n": 1}, 60)
    held = _held_address(redis_store)
    assert redis.Redis.from_url(REDIS_URL).client_kill_filter(addr=held) == 1
    assert redis_store.get("k") == {"n": 1}


def test_after_a_failure_the_thread_lets_its_connection_go(redis_store, monkeypatch):
    """A failed call gives the connection back to the pool (which connects it afresh, a
    Sentinel-managed one to the primary the Sentinels name now): the next call takes
    another and is answered."""
    import redis

    redis_store.put("k", {"n": 1}, 60)
    broken = redis_store._here()

    def refuse(*_args, **_kwargs):
        raise redis.ConnectionError("the primary went away")

    monkeypatch.setattr(broken, "get", refuse)
    with pytest.raises(StoreUnavailable):
        redis_store.get("k")
    assert broken.connection is None  # given back
    assert redis_store._here() is not broken
    assert redis_store.get("k") == {"n": 1}


def test_a_connection_the_pool_no_longer_owns_is_given_back_before_use(redis_store,
                                                                       monkeypatch):
    """A Sentinel-managed pool owns a connection no more once the Sentinels name another
    primary: a kept one is checked before each use, as the pool checks those it gets
    back, and replaced."""
    redis_store.put("k", {"n": 1}, 60)
    client = redis_store._here()
    held = client.connection
    pool = client.connection_pool
    real = pool.owns_connection
    monkeypatch.setattr(pool, "owns_connection", lambda conn: conn is not held and real(conn))
    assert redis_store.get("k") == {"n": 1}
    assert redis_store._here().connection is not held


def test_a_forked_child_takes_a_connection_of_its_own(redis_store):
    """A process forked after its parent made a connection must not talk on the parent's
    socket (the two would read each other's answers)."""
    import os

    redis_store.put("k", {"n": 1}, 60)
    parent_id = redis_store._here().client_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave at once
        try:
            os.close(read_end)
            found = redis_store.get("k") == {"n": 1}
            os.write(write_end, f"{int(found)} {redis_store._here().client_id()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        answer = pipe.read().split()
    os.waitpid(pid, 0)
    assert answer[0] == "1" and int(answer[1]) != parent_id
    assert redis_store._here().client_id() == parent_id  # the parent's is untouched
    assert redis_store.get("k") == {"n": 1}


def test_a_batch_defers_drop_but_never_delete(redis_store):
    """A revocation deletes a cached token copy at once, before it commits (a failed
    delete must stop it); only drop() waits for the batch."""
    redis_store.put("revoked-copy", {"n": 1}, 60)
    redis_store.put("finished-txn", {"n": 2}, 60)
    with redis_store.batched():
        redis_store.delete("revoked-copy")
        redis_store.drop("finished-txn")
        assert redis_store.get("revoked-copy") is None  # gone already
        assert redis_store.get("finished-txn") == {"n": 2}  # goes with the batch
    assert redis_store.get("finished-txn") is None


def test_a_batch_goes_on_the_threads_own_connection_and_the_thread_keeps_it(redis_store):
    """The batch's pipeline is sent on the connection the thread keeps, and afterwards
    that connection is still the thread's alone: had the pipeline handed it back to the
    pool, another thread could take it while this one still talks on it (two threads on
    one socket read each other's answers)."""
    import threading

    redis_store.put("warm", {"n": 0}, 60)
    client = redis_store._here()
    held = client.connection
    pool = client.connection_pool
    created = pool._created_connections
    with redis_store.batched():
        redis_store.put("a", {"n": 1}, 60)
        redis_store.put("b", {"n": 2}, 60)
    assert pool._created_connections == created  # no second connection for the batch
    assert client.connection is held and redis_store._here() is client
    assert held in pool._in_use_connections and held not in pool._available_connections
    seen: list[object] = []
    other = threading.Thread(target=lambda: (redis_store.get("a"),
                                             seen.append(redis_store._here().connection)))
    other.start()
    other.join(10)
    assert seen and seen[0] is not held
    assert redis_store.get("a") == {"n": 1} and redis_store.get("b") == {"n": 2}


def test_a_batch_after_the_server_closed_the_threads_connection_still_lands(redis_store):
    import redis

    from tests.conftest import REDIS_URL

    redis_store.put("k", {"n": 1}, 60)
    held = _held_address(redis_store)
    assert redis.Redis.from_url(REDIS_URL).client_kill_filter(addr=held) == 1
    with redis_store.batched():
        redis_store.put("after", {"n": 2}, 60)
    assert redis_store.get("after") == {"n": 2}


def test_a_batch_that_fails_lets_the_connection_go_and_runs_its_fallbacks(redis_store,
                                                                            monkeypatch):
    import redis

    from idp.store import thread_clients

    redis_store.put("k", {"n": 1}, 60)
    broken = redis_store._here()

    def refuse(self, *_args, **_kwargs):
        raise redis.ConnectionError("the primary went away")

    monkeypatch.setattr(thread_clients._KeptConnectionPipeline, "execute", refuse)
    ran: list[str] = []
    with pytest.raises(StoreUnavailable), redis_store.batched():
        redis_store.put("x", {"n": 1}, 60)
        redis_store.on_batch_failure(lambda: ran.append("fallback"))
    monkeypatch.undo()
    assert ran == ["fallback"]
    assert broken.connection is None and redis_store._here() is not broken
    with redis_store.batched():
        redis_store.put("x", {"n": 3}, 60)
    assert redis_store.get("x") == {"n": 3}


def test_a_batch_pipeline_holding_a_connection_of_its_own_is_refused_and_gives_it_back(
        redis_store):
    """Batches only queue writes. A pipeline that ran a command before its send (a WATCH)
    took a pool connection of its own: sending it on the thread's connection is refused,
    and that other connection goes back to the pool when it is reset, not lost."""
    clients = redis_store._clients
    pool = redis_store._here().connection_pool
    in_use = len(pool._in_use_connections)
    pipe = clients.pipeline()
    pipe.watch(redis_store.qualified("k"))
    pipe.multi()
    pipe.set(redis_store.qualified("k"), "x")
    with pytest.raises(RuntimeError):
        clients.send(pipe)
    pipe.reset()
    assert len(pool._in_use_connections) == in_use
    assert redis_store._here().connection in pool._in_use_connections  # still the thread's


def test_a_driver_statement_refuses_a_parameter_it_would_send_unconverted():
    """The grants' writes pass values to psycopg as they are, JSON encoded by hand: a
    column whose type needs converting and is not named stops the rendering."""
    from sqlalchemy import insert
    from sqlalchemy.dialects.postgresql import psycopg

    from idp.store.db import DriverStatement
    from idp.store.models import TokenFamily

    dialect = psycopg.dialect()
    family = insert(TokenFamily.__table__)
    with pytest.raises(TypeError, match="amr"):
        DriverStatement(family).sql(dialect)
    assert "INSERT INTO token_families" in DriverStatement(
        family, json_params=frozenset({"amr"})).sql(dialect)
