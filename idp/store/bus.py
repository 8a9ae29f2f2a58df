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
        self.shared = False

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
        if not self.shared:  # a shared one serves other app objects of this process too
            self._stop.set()

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
                with self._lock:
                    names = [CHANNEL_PREFIX + c for c in self._channels]
                pubsub.subscribe(*names)
                # Whatever was published while we were not listening is lost: drop it all.
                self._gap()
                self._connected.set()
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=1.0)
                    if item is None or item.get("type") != "message":
                        continue
                    channel = _text(item["channel"]).removeprefix(CHANNEL_PREFIX)
                    message = _text(item["data"])
                    with self._lock:
                        subscribers = list(self._channels.get(channel, []))
                    for subscriber in subscribers:
                        subscriber.on_message(message)
            except Exception as exc:  # noqa: BLE001 - Redis away: retry, then a gap
                self._connected.clear()
                log.warning("bus_disconnected", error=str(exc)[:200])
                time.sleep(self._delay)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # already broken: nothing to do
                        pubsub.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_LOCAL_BUSES: dict[str, LocalBus] = {}
_REDIS_BUSES: dict[str, RedisBus] = {}


def open_bus(store: Any, database_url: str) -> InvalidationBus:
    """The bus that matches the short-lived store: Redis's own client when it has one, else
    one in-process bus per database, so every app object in this process on that database
    (the embedded server has one; tests have several) hears every change."""
    client = getattr(store, "redis_client", None)
    if callable(client):
        # One per database in this process too: a change made through one app object is
        # heard by the others at once, not only after its round trip through Redis.
        bus = _REDIS_BUSES.get(database_url)
        if bus is None:
            bus = _REDIS_BUSES[database_url] = RedisBus(client())
            bus.shared = True
        return bus
    return _LOCAL_BUSES.setdefault(database_url, LocalBus())
