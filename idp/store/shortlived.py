"""Short-lived state (codes, login transactions, sessions, challenges, rate-limit counters).

One interface, two implementations: :class:`RedisStore` for real deployments and
:class:`MemoryStore`, the embedded default for a single process. Values are JSON objects.
``take`` is atomic, which is what makes an authorization code single-use under concurrency.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

_log = structlog.get_logger("idp.store")


@dataclass(frozen=True)
class TakeResult:
    """What :meth:`take_if` found: the record it took, or whether one was there at all,
    and (``spent``) the record an earlier take already took."""

    record: dict[str, Any] | None
    present: bool
    spent: dict[str, Any] | None = None


# A taken record stays until its TTL ends (and at least SPENT_KEPT_FOR seconds: a code
# taken in its last second still needs its mark while its redemption runs), wrapped in
# this one key, so that a later take knows it was spent rather than never there (a
# replay racing the first redemption).
_SPENT_OPENING = '{"__spent__": '
SPENT_KEPT_FOR = 60


class StoreUnavailable(RuntimeError):
    """The short-lived store cannot be reached; callers answer 503 and write nothing."""


class ShortLivedStore(Protocol):
    def put(self, key: str, value: dict[str, Any], ttl: int) -> None: ...
    def put_if_absent(self, key: str, value: dict[str, Any], ttl: int) -> bool: ...
    def put_if_present(self, key: str, value: dict[str, Any], ttl: int) -> None: ...
    def put_unless(self, key: str, value: dict[str, Any], ttl: int, marker: str) -> None: ...
    def get(self, key: str) -> dict[str, Any] | None: ...
    def take(self, key: str) -> dict[str, Any] | None: ...
    def delete(self, key: str) -> None: ...
    def drop(self, key: str) -> None: ...
    def incr(self, key: str, ttl: int) -> int: ...
    def tally(self, key: str, delta: int, ttl: int,
              stamp: float | None = None) -> tuple[int, float]: ...
    def ttl(self, key: str) -> int: ...
    def add_member(self, key: str, member: str, ttl: int) -> None: ...
    def members(self, key: str) -> set[str]: ...
    def remove_member(self, key: str, member: str) -> None: ...
    def ping(self) -> None: ...
    def take_if(self, key: str, field: str, expected: str) -> TakeResult: ...
    def batched(self, *, flush: bool = False) -> Any: ...


class MemoryStore:
    """In-process store: one process only (the settings refuse it with several workers)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._ops = 0

    def _live(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._data[key]
            return None
        return item[1]

    def _sweep(self) -> None:
        self._ops += 1
        if self._ops % 1000 == 0:
            now = self._clock()
            for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
                del self._data[key]

    def put(self, key: str, value: dict[str, Any], ttl: int) -> None:
        blob = json.dumps(value)
        with self._lock:
            self._sweep()
            self._data[key] = (self._clock() + ttl, blob)

    def put_if_absent(self, key: str, value: dict[str, Any], ttl: int) -> bool:
        blob = json.dumps(value)
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (self._clock() + ttl, blob)
            return True

    def put_if_present(self, key: str, value: dict[str, Any], ttl: int) -> None:
        """Replace ``key`` only while it exists (see :meth:`RedisStore.put_if_present`)."""
        blob = json.dumps(value)
        with self._lock:
            if self._live(key) is not None:
                self._data[key] = (self._clock() + ttl, blob)

    def put_unless(self, key: str, value: dict[str, Any], ttl: int, marker: str) -> None:
        """Write ``key`` unless ``marker`` exists (see :meth:`RedisStore.put_unless`)."""
        blob = json.dumps(value)
        with self._lock:
            if self._live(marker) is None:
                self._data[key] = (self._clock() + ttl, blob)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            blob = self._live(key)
        return json.loads(blob) if isinstance(blob, str) else None

    def take(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            blob = self._live(key)
            if blob is not None:
                del self._data[key]
        return json.loads(blob) if isinstance(blob, str) else None

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def drop(self, key: str) -> None:
        """As :meth:`delete` (no batches in one process): see :meth:`RedisStore.drop`."""
        self.delete(key)

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            current = self._live(key)
            if isinstance(current, int):
                exp = self._data[key][0]
                self._data[key] = (exp, current + 1)
                return current + 1
            self._data[key] = (self._clock() + ttl, 1)
            return 1

    def tally(self, key: str, delta: int, ttl: int,
              stamp: float | None = None) -> tuple[int, float]:
        """Atomically add ``delta`` to the counter ``key`` (never below 0) and, with ``stamp``,
        record it as the counter's time (renewing ``ttl``). Returns (new count, the time
        recorded before this call, 0 if none). The throttle's reservations rest on this."""
        with self._lock:
            current = self._live(key)
            n, t = current if isinstance(current, tuple) else (0, 0.0)
            exp = self._data[key][0] if isinstance(current, tuple) else self._clock() + ttl
            if stamp is not None:
                exp = self._clock() + ttl
            self._data[key] = (exp, (max(0, n + delta), t if stamp is None else float(stamp)))
            return max(0, n + delta), t

    def ttl(self, key: str) -> int:
        with self._lock:
            if self._live(key) is None:
                return -2
            return max(0, int(self._data[key][0] - self._clock()))

    def add_member(self, key: str, member: str, ttl: int) -> None:
        with self._lock:
            current = self._live(key)
            members = set(current) if isinstance(current, set) else set()
            members.add(member)
            self._data[key] = (self._clock() + ttl, members)

    def members(self, key: str) -> set[str]:
        with self._lock:
            current = self._live(key)
            return set(current) if isinstance(current, set) else set()

    def remove_member(self, key: str, member: str) -> None:
        with self._lock:
            current = self._live(key)
            if isinstance(current, set):
                current.discard(member)

    def ping(self) -> None:
        return None

    @contextmanager
    def batched(self, *, flush: bool = False) -> Iterator[None]:
        """Nothing to gather in one process: see :meth:`RedisStore.batched`."""
        yield

    def take_if(self, key: str, field: str, expected: str) -> TakeResult:
        """Compare-and-take under the lock: the record is taken only if ``record[field]``
        is ``expected``; otherwise it stays (a wrong presenter cannot spend it). A taken
        record is kept, marked spent, until its TTL ends: later takes get it as
        ``spent``."""
        with self._lock:
            blob = self._live(key)
            if not isinstance(blob, str):
                return TakeResult(None, False)
            if blob.startswith(_SPENT_OPENING):
                return TakeResult(None, True, json.loads(blob)["__spent__"])
            record = json.loads(blob)
            if not isinstance(record, dict) or record.get(field) != expected:
                return TakeResult(None, True)
            expires = max(self._data[key][0], self._clock() + SPENT_KEPT_FOR)
            self._data[key] = (expires, _SPENT_OPENING + blob + "}")
        return TakeResult(record, True)


# KEYS[1] = counter hash {n, t}; ARGV = delta, ttl, stamp ('' = keep). One script, so
# parallel workers never read-modify-write the same counter (see MemoryStore.tally).
_TALLY_LUA = """
local t = redis.call('HGET', KEYS[1], 't') or '0'
local n = redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])
if n < 0 then redis.call('HSET', KEYS[1], 'n', 0); n = 0 end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 't', ARGV[3]); redis.call('EXPIRE', KEYS[1], ARGV[2])
elseif redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {n, t}
"""
# KEYS[1] = counter; ARGV = ttl. INCR and its first EXPIRE in one step: a counter never
# outlives its window because a second command failed.
_INCR_LUA = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
# KEYS[1] = the key to write, KEYS[2] = the marker that forbids it; ARGV = value, ttl.
_PUT_UNLESS_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
# KEYS[1] = set; ARGV = member, ttl.
_ADD_MEMBER_LUA = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisStore:
    """Redis-backed store. Every Redis failure becomes :class:`StoreUnavailable`."""

    def __init__(self, url: str, prefix: str = "mynagate:") -> None:
        import redis

        from idp.store.redis_url import connect, parse_redis_url
        from idp.store.thread_clients import ThreadClients

        self._redis_errors = (redis.RedisError, OSError)
        # No command retries: the invalidation bus shares this client, and a pub/sub
        # connection that reconnected silently would hide the messages it missed (the bus
        # must see the gap). A failed command is a 503; the next request tries again, and a
        # Sentinel client asks the Sentinels for the primary anew on each new connection.
        self._r = connect(parse_redis_url(url), socket_timeout=3, socket_connect_timeout=3,
                          health_check_interval=30)
        self._p = prefix
        # Every command and script here touches ONE key, so each works unchanged on a Redis
        # Cluster (no cross-slot errors) and is atomic on its own; put_unless's script
        # holds two and is used only off a Cluster.
        from redis.cluster import RedisCluster

        self._cluster = isinstance(self._r, RedisCluster)
        self._put_unless = self._r.register_script(_PUT_UNLESS_LUA)
        self._tally = self._r.register_script(_TALLY_LUA)
        self._incr = self._r.register_script(_INCR_LUA)
        self._add_member = self._r.register_script(_ADD_MEMBER_LUA)
        self._take_if = self._r.register_script(self._TAKE_IF)
        self._batch = threading.local()
        self._clients = ThreadClients(self._r, self._redis_errors,
                                      per_thread=not self._cluster)

    def _here(self) -> Any:
        """This thread's own client (:mod:`idp.store.thread_clients`)."""
        try:
            return self._clients.here()
        except self._redis_errors as exc:
            self._clients.let_go()
            raise StoreUnavailable(str(exc)) from exc

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except self._redis_errors as exc:
            self._clients.let_go()  # whatever broke, the next call starts afresh
            raise StoreUnavailable(str(exc)) from exc

    def put(self, key: str, value: dict[str, Any], ttl: int) -> None:
        self._call(self._batch_or_here().set, self._p + key, json.dumps(value), max(1, ttl))

    # -- write-behind batches: the writes a request makes once its work is committed (the
    # token grants' access-token copy and event records) cost one round trip, not one each.
    @contextmanager
    def batched(self, *, flush: bool = False) -> Iterator[None]:
        """Writes this thread makes inside (:meth:`put`, :meth:`drop`, :meth:`add_member`,
        :meth:`put_unless`, and what goes through :meth:`writer`) are sent together, in one
        round trip, when the block ends, even if it raised. Reads inside would get no
        answer: make none. When Redis cannot take the batch, the ``on_batch_failure``
        callbacks run, then StoreUnavailable.

        A block inside another is sent with the outer one, unless ``flush``: then, when it
        ends without raising, everything the open batch holds (the outer block's writes
        so far with its own) is sent at once, so that a failure to store it is raised
        here, where its caller can still answer it (an authorization code that could not
        be stored must not reach the app as stored). The outer block goes on with an
        empty batch."""
        if self._open_batch() is not None:
            yield  # already inside one: the outer block sends, or this one flushes it
            if flush:
                pipe, fallbacks = self._batch.pipe, self._batch.fallbacks
                self._batch.pipe, self._batch.fallbacks = self._clients.pipeline(), []
                self._send(pipe, fallbacks)
            return
        pipe = self._clients.pipeline()
        self._batch.pipe, self._batch.fallbacks = pipe, []
        try:
            yield
        finally:
            pipe, fallbacks = self._batch.pipe, self._batch.fallbacks
            self._batch.pipe = self._batch.fallbacks = None
            self._send(pipe, fallbacks)

    def _send(self, pipe: Any, fallbacks: list[Callable[[], None]]) -> None:
        if not len(pipe):
            return
        try:
            self._clients.send(pipe)
        except self._redis_errors as exc:
            self._clients.let_go()
            for fallback in fallbacks:
                try:
                    fallback()
                except Exception:  # noqa: BLE001 - the others still get their turn
                    _log.exception("store_batch_fallback_failed")
            raise StoreUnavailable(str(exc)) from exc

    def put_unless(self, key: str, value: dict[str, Any], ttl: int, marker: str) -> None:
        """Write ``key`` unless ``marker`` exists, in one server-side step (a script; in a
        batch, sent with it). On a Redis Cluster the two keys may live on different
        nodes, so no script can hold both: there it is ordered instead, the write first
        and then the look, each answered before the next (whoever writes ``marker``
        before looking for ``key`` cannot miss this write, nor it the marker), and a
        delete that fails is logged as an error."""
        blob, ttl, keys = json.dumps(value), max(1, ttl), [self._p + key, self._p + marker]
        if not self._cluster:
            pipe = self._open_batch()
            if pipe is not None:
                # EVAL, not EVALSHA: a pipeline would ask for its scripts' presence in a
                # round trip of its own each time (Redis caches the compiled script).
                pipe.eval(_PUT_UNLESS_LUA, 2, *keys, blob, ttl)
            else:
                self._call(self._put_unless, keys, [blob, ttl], self._here())
            return
        self._call(lambda: self._r.set(keys[0], blob, ex=ttl))
        if self._call(self._r.exists, keys[1]):
            try:
                self._call(self._r.delete, keys[0])
            except StoreUnavailable:
                _log.error("copy_of_revoked_family_left", key=key)
                raise

    def writer(self) -> Any:
        """Where a write goes now: this thread's batch if one is open, else Redis."""
        pipe = self._open_batch()
        return self._r if pipe is None else pipe

    def _batch_or_here(self) -> Any:
        """As :meth:`writer`, with this thread's own client outside a batch (for the
        store's own calls, which all go through :meth:`_call`)."""
        pipe = self._open_batch()
        return self._here() if pipe is None else pipe

    def _open_batch(self) -> Any:
        """This thread's open batch (a pipeline), or None."""
        return getattr(self._batch, "pipe", None)

    def on_batch_failure(self, fallback: Callable[[], None]) -> bool:
        """Register what to do instead if the open batch cannot be sent; False when no
        batch is open (the write goes at once, and its caller handles its failure)."""
        fallbacks = getattr(self._batch, "fallbacks", None)
        if fallbacks is None:
            return False
        fallbacks.append(fallback)
        return True

    def put_if_absent(self, key: str, value: dict[str, Any], ttl: int) -> bool:
        def op():
            return self._here().set(self._p + key, json.dumps(value), ex=max(1, ttl),
                                    nx=True)
        return bool(self._call(op))

    def put_if_present(self, key: str, value: dict[str, Any], ttl: int) -> None:
        """Replace ``key`` only while it exists (SET XX; in a batch, sent with it): a record
        that was deleted meanwhile (perhaps by a batch whose answer was lost) stays so."""
        self._call(functools.partial(self._batch_or_here().set, self._p + key,
                                     json.dumps(value), ex=max(1, ttl), xx=True))

    def get(self, key: str) -> dict[str, Any] | None:
        blob = self._call(self._here().get, self._p + key)
        return json.loads(blob) if blob else None

    def take(self, key: str) -> dict[str, Any] | None:
        blob = self._call(self._here().getdel, self._p + key)
        return json.loads(blob) if blob else None

    def delete(self, key: str) -> None:
        self._call(self._here().delete, self._p + key)

    def drop(self, key: str) -> None:
        """Delete ``key`` with the open batch (at its end), or at once when none is open.
        Only for a key whose deletion may fail with the batch: a revocation's must not
        (it uses :meth:`delete`, at once, before it commits)."""
        self._call(self._batch_or_here().delete, self._p + key)

    def incr(self, key: str, ttl: int) -> int:
        return int(self._call(self._incr, [self._p + key], [max(1, ttl)], self._here()))

    def tally(self, key: str, delta: int, ttl: int,
              stamp: float | None = None) -> tuple[int, float]:
        def op():
            return self._tally(keys=[self._p + key],
                               args=[delta, max(1, ttl), "" if stamp is None else repr(stamp)],
                               client=self._here())
        n, t = self._call(op)
        return int(n), float(t)

    def ttl(self, key: str) -> int:
        return int(self._call(self._here().ttl, self._p + key))

    def add_member(self, key: str, member: str, ttl: int) -> None:
        pipe = self._open_batch()
        if pipe is not None:  # EVAL in a batch: see put_unless
            pipe.eval(_ADD_MEMBER_LUA, 1, self._p + key, member, max(1, ttl))
            return
        self._call(self._add_member, [self._p + key], [member, max(1, ttl)], self._here())

    def members(self, key: str) -> set[str]:
        raw = self._call(self._r.smembers, self._p + key)
        return {m.decode() if isinstance(m, bytes) else m for m in raw}

    def remove_member(self, key: str, member: str) -> None:
        self._call(self._r.srem, self._p + key, member)

    def ping(self) -> None:
        self._call(self._r.ping)

    # Compare-and-take in one server-side step: 0 = absent, 1 = present but not a match
    # (left in place), 'S' and the record for one already spent, else the value taken (left
    # in place, wrapped as spent, for its TTL or SPENT_KEPT_FOR seconds if longer).
    _TAKE_IF = """
    local blob = redis.call('GET', KEYS[1])
    if not blob then return 0 end
    if string.sub(blob, 1, string.len(ARGV[3])) == ARGV[3] then return 'S' .. blob end
    local ok, doc = pcall(cjson.decode, blob)
    if not ok or type(doc) ~= 'table' or doc[ARGV[1]] ~= ARGV[2] then return 1 end
    local ttl = redis.call('TTL', KEYS[1])
    if ttl < tonumber(ARGV[4]) then ttl = tonumber(ARGV[4]) end
    redis.call('SET', KEYS[1], ARGV[3] .. blob .. '}', 'EX', ttl)
    return blob
    """

    def take_if(self, key: str, field: str, expected: str) -> TakeResult:
        """Compare-and-take atomically (a Lua script): see :meth:`MemoryStore.take_if`."""
        found = self._call(self._take_if, [self._p + key],
                           [field, expected, _SPENT_OPENING, SPENT_KEPT_FOR], self._here())
        if found in (0, 1):
            return TakeResult(None, found == 1)
        if isinstance(found, bytes):
            found = found.decode()
        if found.startswith("S"):
            return TakeResult(None, True, json.loads(found[1:])["__spent__"])
        return TakeResult(json.loads(found), True)

    def qualified(self, key: str) -> str:
        """The Redis key this store uses for ``key`` (its prefix is its namespace)."""
        return self._p + key

    def redis_client(self):
        """The Redis connection, for what shares it (the invalidation bus, the event log)."""
        return self._r

    def flush_prefix(self) -> None:
        """Delete every key of this store (tests use a unique prefix each run)."""
        for key in self._r.scan_iter(self._p + "*"):
            self._r.delete(key)


def open_store(redis_url: str) -> ShortLivedStore:
    """Redis when a URL is given (one server, Sentinel or Cluster: :mod:`idp.store.redis_url`),
    else the in-process store."""
    return RedisStore(redis_url) if redis_url else MemoryStore()
