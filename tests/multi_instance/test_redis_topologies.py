"""The short-lived store on a real Redis Sentinel (through a failover) and a real Redis
Cluster: every operation the provider uses, through ``redis+sentinel://`` and
``redis+cluster://`` URLs, as :func:`idp.store.shortlived.open_store` reads them."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import redis

from idp.store.shortlived import RedisStore, StoreUnavailable, open_store
from tests.multi_instance.servers import RedisSentinel, RedisServer, free_port, wait_until

pytestmark = [pytest.mark.multi_instance]


def exercise(store) -> None:
    """Each operation of the ShortLivedStore protocol once, with its one-key guarantees."""
    store.put("a", {"x": 1}, 30)
    assert store.get("a") == {"x": 1}
    assert store.take("a") == {"x": 1} and store.take("a") is None
    assert store.put_if_absent("k", {"v": 1}, 30) and not store.put_if_absent("k", {}, 30)
    assert [store.incr("n", 30) for _ in range(3)] == [1, 2, 3]
    assert 0 < store.ttl("n") <= 30
    assert store.tally("t", 2, 30, stamp=5.0) == (2, 0.0)
    assert store.tally("t", -5, 30) == (0, 5.0)
    store.add_member("s", "m1", 30)
    store.add_member("s", "m2", 30)
    store.remove_member("s", "m1")
    assert store.members("s") == {"m2"}
    store.put("code", {"client_id": "c1"}, 30)
    assert store.take_if("code", "client_id", "c2").present
    assert store.take_if("code", "client_id", "c1").record == {"client_id": "c1"}
    assert store.take_if("code", "client_id", "c1").spent == {"client_id": "c1"}
    # The access-token copy's write (ordered on a Cluster, not one script: two keys).
    store.put("mark", {}, 30)
    store.put_unless("copy-1", {"n": 1}, 30, marker="mark")
    store.put_unless("copy-2", {"n": 2}, 30, marker="no-mark")
    assert store.get("copy-1") is None and store.get("copy-2") == {"n": 2}
    with store.batched():
        store.put_unless("copy-3", {"n": 3}, 30, marker="mark")
    assert store.get("copy-3") is None
    store.delete("k")
    assert store.get("k") is None
    store.ping()


@pytest.fixture
def sentinel_pair():
    primary = RedisServer("--repl-diskless-sync-delay", "0")  # no 5 s wait for the replica
    replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port))
    wait_until(lambda: redis.Redis(port=replica.port).info("replication")
               ["master_link_status"] == "up", 10, "replication")
    sentinel = RedisSentinel(primary.port)
    try:
        yield primary, replica, sentinel
    finally:
        sentinel.close()
        replica.close()
        primary.close()


def test_sentinel_url_follows_a_failover(sentinel_pair):
    primary, replica, sentinel = sentinel_pair
    store = open_store(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0")
    assert isinstance(store, RedisStore)
    store._p = f"t-{uuid.uuid4().hex[:8]}:"
    exercise(store)
    store.put("kept", {"v": 1}, 60)
    redis.Redis(port=primary.port).wait(1, 2000)  # the replica has it before the primary dies
    primary.stop()
    # Until the Sentinel promotes the replica, the store is unavailable (a 503), not wrong.
    deadline = time.monotonic() + 20
    while True:
        try:
            assert store.get("kept") == {"v": 1}
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the Sentinel did not fail over in 20 s"
            time.sleep(0.2)
    assert redis.Redis(port=replica.port).info("replication")["role"] == "master"
    store._p = f"t-{uuid.uuid4().hex[:8]}:"
    exercise(store)  # writes go to the new primary


@pytest.fixture
def cluster_node():
    # The cluster bus listens on port + 10000.
    node = RedisServer("--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                       port=free_port(below=55000))
    try:
        # One node holding every slot: a complete (if small) cluster.
        subprocess.run(["redis-cli", "-p", str(node.port), "cluster", "addslotsrange", "0",
                        "16383"], check=True, capture_output=True, timeout=10)
        wait_until(lambda: redis.Redis(port=node.port).cluster("info")["cluster_state"] == "ok",
                   10, "cluster state ok")
        yield node
    finally:
        node.close()


def test_cluster_url_runs_every_operation(cluster_node):
    from redis.cluster import RedisCluster

    store = open_store(f"redis+cluster://127.0.0.1:{cluster_node.port}")
    assert isinstance(store, RedisStore) and isinstance(store._r, RedisCluster)
    store._p = f"t-{uuid.uuid4().hex[:8]}:"
    exercise(store)
    store.flush_prefix()
    assert not list(store._r.scan_iter(store._p + "*"))
