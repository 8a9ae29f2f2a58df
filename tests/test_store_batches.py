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
