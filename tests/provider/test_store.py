"""The short-lived store: both implementations behave the same, and take() is atomic."""

from __future__ import annotations

import threading

import pytest

from idp.store.shortlived import MemoryStore


@pytest.fixture
def store(any_store):
    return any_store


def test_put_get_take_delete(store):
    store.put("a", {"x": 1}, 30)
    assert store.get("a") == {"x": 1}
    assert store.take("a") == {"x": 1}
    assert store.take("a") is None
    store.put("b", {"y": 2}, 30)
    store.delete("b")
    assert store.get("b") is None


def test_put_if_absent_and_counters(store):
    assert store.put_if_absent("k", {"v": 1}, 30) is True
    assert store.put_if_absent("k", {"v": 2}, 30) is False
    assert store.get("k") == {"v": 1}
    assert [store.incr("n", 30) for _ in range(3)] == [1, 2, 3]


def test_members(store):
    store.add_member("s", "a", 30)
    store.add_member("s", "b", 30)
    store.remove_member("s", "a")
    assert store.members("s") == {"b"}


def test_expiry_in_memory():
    now = [1000.0]
    s = MemoryStore(clock=lambda: now[0])
    s.put("a", {"x": 1}, 10)
    now[0] += 11
    assert s.get("a") is None


def test_take_is_atomic_under_concurrency(store):
    """Of many concurrent redemptions of one code, exactly one gets it."""
    for round_ in range(5):
        key = f"code:{round_}"
        store.put(key, {"c": round_}, 30)
        winners = []
        barrier = threading.Barrier(8)

        def redeem():
            barrier.wait()
            if store.take(key) is not None:
                winners.append(1)

        threads = [threading.Thread(target=redeem) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1
