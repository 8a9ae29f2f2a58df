"""Invalidation messages between the provider's processes.

An in-process cache (clients, for one) is only safe when every process hears about a change
at once. A change publishes a short message on a channel; every process's subscriber
callback drops what it cached. Redis pub/sub is at-most-once: a process that was
disconnected may have missed messages, so on every (re)connection the subscribers are told
about the gap (``on_gap``) and drop *everything*, and their entries also expire on their own
(a TTL) as the last line of defence.

:class:`LocalBus` is the embedded single-process default; :class:`RedisBus` is for several
processes and instances sharing one Redis.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

log = structlog.get_logger("idp.bus")
CHANNEL_PREFIX = "mynagate:bus:"


@dataclass(frozen=True)
class Subscriber:
    on_message: Callable[[str], None]
    on_gap: Callable[[], None]


class InvalidationBus(Protocol):
    def publish(self, channel: str, message: str) -> None: ...
    def subscribe(self, channel: str, subscriber: Subscriber) -> None: ...
    def close(self) -> None: ...


class LocalBus:
    """One process: a publish calls the subscribers directly (nothing can be missed)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def publish(self, channel: str, message: str) -> None:
        for subscriber in self._subscribers.get(channel, []):
            subscriber.on_message(message)

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(channel, []).append(subscriber)

    def close(self) -> None:
        return None  # shared by the apps on one database: their caches stay subscribed


class RedisBus:
    """Redis pub/sub with one listener thread per process, started on the first subscribe.

    A publish also reaches the publishing process's own subscribers directly, so a change is
    visible in this process even before the message comes back, and even when Redis is
    briefly away (the other processes then see a gap, and drop everything).
    """

    def __init__(self, client: Any, reconnect_delay: float = 1.0) -> None:
        self._redis = client
        self._local = LocalBus()
        self._channels: dict[str, list[Subscriber]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._delay = reconnect_delay
        self._connected = threading.Event()
        # How many app objects of this process use this bus (open_bus shares one per
        # database and Redis); the listener stops when the last one closes.
        self._users = 1
        self._on_stopped: Callable[[], None] | None = None

    def publish(self, channel: str, message: str) -> None:
        self._local.publish(channel, message)
        try:
            self._redis.publish(CHANNEL_PREFIX + channel, message)
        except Exception as exc:  # noqa: BLE001 - the others will see a gap and drop all
            log.warning("bus_publish_failed", channel=channel, error=str(exc)[:200])

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        with self._lock:
            self._local.subscribe(channel, subscriber)
            self._channels.setdefault(channel, []).append(subscriber)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="mynagate-bus",
                                                daemon=True)
                self._thread.start()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Whether the listener is subscribed (tests wait for it before publishing)."""
        return self._connected.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:  # other app objects of this process still use it
                return
            self._stop.set()
        if self._on_stopped is not None:
            self._on_stopped()

    def _share(self) -> bool:
        """One more user, unless the last one has just closed it."""
        with self._lock:
            if self._stop.is_set():
                return False
            self._users += 1
            return True

    def _gap(self) -> None:
        with self._lock:
            subscribers = [s for subs in self._channels.values() for s in subs]
        for subscriber in subscribers:
            subscriber.on_gap()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # One pattern for every channel: a cache that subscribes after the listener
                # connected (each app builds several) hears its channel too.
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                # Whatever was published while we were not listening is lost: drop it all.
                self._gap()
                self._connected.set()
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=1.0)
                    if item is None or item.get("type") != "pmessage":
                        continue
                    channel = _text(item["channel"]).removeprefix(CHANNEL_PREFIX)
                    message = _text(item["data"])
                    with self._lock:
                        subscribers = list(self._channels.get(channel, []))
                    for subscriber in subscribers:
                        subscriber.on_message(message)
            except Exception as exc:  # noqa: BLE001 - Redis away: retry, then a gap
                self._connected.clear()
                if self._stop.is_set():  # closed while connecting: nothing to report
                    break
                log.warning("bus_disconnected", error=str(exc)[:200])
                time.sleep(self._delay)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # already broken: nothing to do
                        pubsub.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_LOCAL_BUSES: dict[str, LocalBus] = {}
_REDIS_BUSES: dict[tuple[str, str], RedisBus] = {}
_REGISTRY_LOCK = threading.Lock()


def open_bus(store: Any, database_url: str, redis_url: str = "") -> InvalidationBus:
    """The bus that matches the short-lived store: Redis's own client when it has one, else
    one in-process bus per database, so every app object in this process on that database
    (the embedded server has one; tests have several) hears every change.

    A Redis bus is shared too, per database *and* Redis: a change made through one app
    object is heard by the others at once, not only after its round trip through Redis.
    Each app object closes its share; the last close stops the listener."""
    client = getattr(store, "redis_client", None)
    if not callable(client):
        return _LOCAL_BUSES.setdefault(database_url, LocalBus())
    key = (database_url, redis_url)
    with _REGISTRY_LOCK:
        bus = _REDIS_BUSES.get(key)
        if bus is not None and bus._share():
            return bus
        bus = _REDIS_BUSES[key] = RedisBus(client())

    def forget() -> None:
        with _REGISTRY_LOCK:
            if _REDIS_BUSES.get(key) is bus:
                del _REDIS_BUSES[key]

    bus._on_stopped = forget
    return bus
