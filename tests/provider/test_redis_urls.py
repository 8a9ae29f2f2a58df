"""``IDP_REDIS_URL``: one server, Sentinel and Cluster URLs are read exactly, a wrong one
stops the provider at start with a message that names the fault (never the password), and a
store that is down makes the throttle refuse rather than wave the attempt through.

Real Sentinel (with a failover) and Cluster servers: tests/multi_instance/test_redis_topologies.py.
"""

from __future__ import annotations

import pytest

from idp.settings import Settings, SettingsError
from idp.signin.throttle import Throttle
from idp.store.redis_url import RedisTarget, connect, parse_redis_url
from idp.store.shortlived import StoreUnavailable


@pytest.mark.parametrize("url, kind, db", [
    ("redis://127.0.0.1:6379/0", "single", 0),
    ("redis://:secret@redis.internal/15", "single", 15),
    ("rediss://user:pw@redis.internal:6380", "single", 0),
    ("redis://redis.internal:6379/", "single", 0),
    ("unix:///run/redis/redis.sock?db=3", "single", 3),
])
def test_single_server_urls(url: str, kind: str, db: int):
    target = parse_redis_url(url)
    assert (target.kind, target.db) == (kind, db)
    assert target.tls == url.startswith("rediss")


def test_sentinel_url_in_full():
    target = parse_redis_url("redis+sentinel://app:p%40ss@s1.internal:26380,s2.internal,"
                             "[fd00::3]:26381/mymaster/2?sentinel_password=sp&"
                             "sentinel_username=watch")
    assert target == RedisTarget(
        "sentinel", target.url, (("s1.internal", 26380), ("s2.internal", 26379),
                                 ("fd00::3", 26381)),
        "mymaster", 2, "app", "p@ss", "watch", "sp", False)
    assert "p@ss" not in repr(target) and "sp'" not in repr(target)


def test_sentinel_url_defaults():
    target = parse_redis_url("rediss+sentinel://:pw@10.0.0.1/cache/")
    assert (target.nodes, target.service_name, target.db, target.password, target.tls) == \
        ((("10.0.0.1", 26379),), "cache", 0, "pw", True)
    assert target.sentinel_password is None


def test_cluster_url():
    target = parse_redis_url("redis+cluster://:pw@n1:7000,n2:7001,n3")
    assert target.kind == "cluster"
    assert target.nodes == (("n1", 7000), ("n2", 7001), ("n3", 6379))
    assert target.password == "pw"
    assert parse_redis_url("rediss+cluster://n1/0").tls


@pytest.mark.parametrize("url, says", [
    ("", "is not a URL"),
    ("127.0.0.1:6379", "is not a URL"),
    ("http://redis.internal", "unknown scheme 'http'"),
    ("redis://", "names no host"),
    ("redis://redis.internal/O", "database 'O' is not a number"),
    ("redis://redis.internal:port/0", "ort"),
    ("redis+sentinel://s1:26379", "needs the service name"),
    ("redis+sentinel://s1:26379/", "needs the service name"),
    ("redis+sentinel://s1/mymaster/x", "database 'x' is not a number"),
    ("redis+sentinel://s1/mymaster/0/extra", "needs the service name"),
    ("redis+sentinel://s1,,s2/mymaster", "empty host"),
    ("redis+sentinel://s1:99999/mymaster", "is not a port number"),
    ("redis+sentinel://s1/mymaster?password=x", "unknown parameter(s) password"),
    ("redis+sentinel://fd00::1/mymaster", "write IPv6 as [::1]:port"),
    ("redis+sentinel://[fd00::1/mymaster", "is not [IPv6]:port"),
    ("redis+sentinel://s1/mymaster#frag", "#fragment"),
    ("redis+cluster://n1:7000/3", "database 0 only"),
    ("redis+cluster://n1:7000?db=1", "unknown parameter(s) db"),
])
def test_wrong_urls_say_what_is_wrong(url: str, says: str):
    with pytest.raises(ValueError) as caught:
        parse_redis_url(url)
    assert says in str(caught.value)


def _settings(redis_url: str) -> Settings:
    return Settings.load({"env": "test", "redis_url": redis_url, "database_url": "sqlite://",
                          "jpki_revocation": "none", "jpki_trust_anchors": []}, environ={})


def test_the_settings_refuse_a_wrong_url_at_start_without_showing_the_password():
    with pytest.raises(SettingsError) as caught:
        _settings("redis+sentinel://:hunter2-secret@s1:26379")
    message = str(caught.value)
    assert message.startswith("IDP_REDIS_URL needs the service name")
    assert "hunter2" not in message
    assert _settings("redis+cluster://n1:7000,n2:7000").redis_url


def test_connect_builds_a_sentinel_client_without_connecting():
    from redis.sentinel import SentinelConnectionPool

    target = parse_redis_url("redis+sentinel://:datapw@127.0.0.1:1,127.0.0.1:2/svc/4"
                             "?sentinel_password=sentpw")
    client = connect(target, socket_timeout=1)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.connection_kwargs["db"],
            pool.connection_kwargs["password"]) == ("svc", 4, "datapw")
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
    assert {s.connection_pool.connection_kwargs["password"] for s in sentinels} == {"sentpw"}
    assert {s.connection_pool.connection_kwargs["socket_timeout"] for s in sentinels} == {1}


class DownStore:
    """Every operation fails as RedisStore does when Redis cannot be reached."""

    def __getattr__(self, name: str):
        def down(*_args, **_kwargs):
            raise StoreUnavailable("connection refused")
        return down


def test_the_throttle_fails_closed_when_the_store_is_down():
    throttle = Throttle(DownStore(), secret="s" * 32)  # type: ignore[arg-type]
    # No attempt proceeds unthrottled: the error reaches the app, which answers 503.
    with pytest.raises(StoreUnavailable):
        throttle.begin("school:kid", "192.0.2.1", account_id="a1")
    with pytest.raises(StoreUnavailable):
        throttle.begin(None, "192.0.2.1")
