"""``IDP_REDIS_URL``: one Redis server, a Sentinel-watched primary, or a Redis Cluster.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix:///path?db=0``:
  one server, exactly as redis-py reads the URL.
- ``redis+sentinel://[[user]:password@]host1[:26379],host2[:26379]/service_name[/db]``
  (``rediss+sentinel://`` for TLS): the primary that the Sentinels name for
  ``service_name``, found again after a failover. The password (and user) is the data
  servers'; ``?sentinel_password=`` (and ``?sentinel_username=``) is the Sentinels' own.
- ``redis+cluster://[[user]:password@]host1[:6379],host2[:6379]`` (``rediss+cluster://``):
  a Redis Cluster, found from any of the listed nodes. A cluster has database 0 only.

:func:`parse_redis_url` checks the URL without connecting (the settings call it at start,
so a typo stops the provider with a message naming the URL's fault);
:func:`connect` builds the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_PORT = 26379
REDIS_PORT = 6379
_SENTINEL_QUERY = {"sentinel_password", "sentinel_username"}


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL names (no password is ever printed: see ``__repr__``)."""

    kind: str  # "single", "sentinel" or "cluster"
    url: str = field(repr=False)
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False


def parse_redis_url(url: str) -> RedisTarget:
    """The target of ``url``; ``ValueError`` says what is wrong with it."""
    scheme, sep, _rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("is not a URL (expected e.g. redis://host:6379/0)")
    if scheme in SINGLE_SCHEMES:
        return _parse_single(url, scheme)
    if scheme in SENTINEL_SCHEMES or scheme in CLUSTER_SCHEMES:
        return _parse_multi(url, scheme)
    known = SINGLE_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES
    raise ValueError(f"unknown scheme {scheme!r} (one of {', '.join(known)})")


def _parse_single(url: str, scheme: str) -> RedisTarget:
    from redis.connection import parse_url

    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    parts = urlsplit(url)
    if scheme != "unix":
        if not parts.hostname:
            raise ValueError("names no host (expected e.g. redis://host:6379/0)")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError as exc:
            raise ValueError(f"has a bad port: {exc}") from exc
        # redis-py ignores a path that is not a number: /O (the letter) would quietly be 0.
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(f"database {parts.path.strip('/')!r} is not a number")
    if scheme == "unix" and not parsed.get("path"):
        raise ValueError("names no socket path (expected unix:///run/redis.sock?db=0)")
    try:
        db = int(parsed.get("db", 0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"database {parsed.get('db')!r} is not a number") from exc
    return RedisTarget("single", url, db=db, username=parsed.get("username"),
                       password=parsed.get("password"), tls=scheme == "rediss")


def _parse_multi(url: str, scheme: str) -> RedisTarget:
    kind = "sentinel" if scheme in SENTINEL_SCHEMES else "cluster"
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    if "#" in rest or "#" in query:
        raise ValueError("must not have a #fragment")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, password = _userinfo(userinfo)
    nodes = tuple(_host_port(part, SENTINEL_PORT if kind == "sentinel" else REDIS_PORT)
                  for part in hosts.split(","))
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    segments = [unquote(s) for s in path.split("/")] if path else []
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if kind == "cluster":
        if segments and segments != ["0"]:
            raise ValueError("a Redis Cluster has database 0 only: leave the path empty")
        if params:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(params))}")
        return RedisTarget("cluster", url, nodes, username=username, password=password,
                           tls=scheme.startswith("rediss"))
    unknown = set(params) - _SENTINEL_QUERY
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(_SENTINEL_QUERY))})")
    if not segments or not segments[0] or len(segments) > 2:
        raise ValueError("needs the service name: redis+sentinel://host:26379/SERVICE[/db]")
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ValueError(f"database {segments[1]!r} is not a number")
        db = int(segments[1])
    return RedisTarget("sentinel", url, nodes, segments[0], db, username, password,
                       params.get("sentinel_username") or None,
                       params.get("sentinel_password") or None, scheme.startswith("rediss"))


def _userinfo(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, has_password, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if has_password and password else None


def _host_port(part: str, default_port: int) -> tuple[str, int]:
    part = part.strip()
    if not part:
        raise ValueError("names an empty host (hosts are separated by single commas)")
    if part.startswith("["):  # [IPv6]:port
        host, bracket, tail = part[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise ValueError(f"host {part!r} is not [IPv6]:port")
        port_text = tail[1:]
    else:
        host, _, port_text = part.partition(":")
        if not host or ":" in port_text:
            raise ValueError(f"host {part!r} is not host:port (write IPv6 as [::1]:port)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} of {host} is not a port number")
    return host, int(port_text)


def connect(target: RedisTarget, **options: Any):
    """A redis-py client for ``target``; ``options`` (timeouts, retry) go to every
    connection, to the Sentinels' too."""
    import redis

    if target.kind == "single":
        return redis.Redis.from_url(target.url, **options)
    auth = {"username": target.username, "password": target.password}
    tls = {"ssl": True} if target.tls else {}
    if target.kind == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],
                            **auth, **tls, **options)
    from redis.sentinel import Sentinel

    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinel = Sentinel(list(target.nodes),
                        sentinel_kwargs={"username": target.sentinel_username,
                                         "password": target.sentinel_password,
                                         **tls, **sentinel_options},
                        **auth, **tls, **options)
    return sentinel.master_for(target.service_name, db=target.db)
