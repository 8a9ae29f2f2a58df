"""Rows read once per process, not once per request, and dropped everywhere when they change.

The hot path read the same few rows on every request (the client, the signed-in account,
its consent). They change rarely, and a change must reach every process at once, so:

- a committed change to a watched model (from any code path: ORM changes of single rows,
  and bulk ``UPDATE``/``DELETE`` statements, which drop the whole cache because their rows
  are not known) is published on the invalidation bus (``idp.store.bus``) *after* the
  commit, from SQLAlchemy session hooks;
- every process drops that entry when it hears the message, and drops everything when its
  bus connection had a gap (messages may have been missed);
- an entry also expires after ``ttl`` seconds, the last line of defence;
- a load that started before an invalidation is not stored (a reader racing a change can
  never put the old row back after the change was heard).

Cached values are detached, read-only snapshots: callers must not change them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from idp.store.bus import InvalidationBus, Subscriber

V = TypeVar("V")
EVERYTHING = "*"
_MISSING = object()


class RowCache(Generic[V]):
    """A bounded, expiring map from a key to what ``load`` returned for it.

    ``cache_missing``: whether "no such row" is cached too (only where keys cannot be
    chosen by an outsider, e.g. a signed-in account's consent for a registered client)."""

    def __init__(self, channel: str, bus: InvalidationBus,
                 load: Callable[[Hashable], V | None], *, ttl: float = 60.0,
                 max_entries: int = 10_000, cache_missing: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.channel = channel
        self._load = load
        self._ttl = ttl
        self._max = max_entries
        self._cache_missing = cache_missing
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        # Tuple keys by their first part (a consent's account): a change to that account
        # drops them without scanning every entry.
        self._by_first: dict[Hashable, set[tuple]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        bus.subscribe(channel, Subscriber(self._heard, self.forget_all))

    def get(self, key: Hashable) -> V | None:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                self._entries.move_to_end(key)
                return None if hit[1] is _MISSING else hit[1]
            generation = self._generation
        value = self._load(key)
        if value is None and not self._cache_missing:
            return None
        with self._lock:
            if generation == self._generation:
                self._entries[key] = (now + self._ttl, _MISSING if value is None else value)
                self._entries.move_to_end(key)
                if isinstance(key, tuple) and key:
                    self._by_first.setdefault(key[0], set()).add(key)
                while len(self._entries) > self._max:
                    self._drop(next(iter(self._entries)))
        return value

    def _drop(self, key: Hashable) -> None:
        """Remove one entry and its index line (the lock is held)."""
        self._entries.pop(key, None)
        if isinstance(key, tuple) and key:
            siblings = self._by_first.get(key[0])
            if siblings is not None:
                siblings.discard(key)
                if not siblings:
                    del self._by_first[key[0]]

    def _heard(self, message: str) -> None:
        if message == EVERYTHING:
            self.forget_all()
        else:
            self.forget_matching(message)

    def forget_matching(self, part: str) -> None:
        """Drop the entry ``part`` and every tuple key that starts with it (a change is
        published by the key's first part: the account of a consent)."""
        with self._lock:
            self._generation += 1
            self._drop(part)
            for key in list(self._by_first.get(part, ())):
                self._drop(key)

    def forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_first.clear()


def watch_changes(sessions: Any, bus: InvalidationBus, model: type, channel: str,
                  keys_of: Callable[[Any], list[str]]) -> None:
    """Publish on ``channel`` the keys (``keys_of(row)``) of ``model`` rows a session
    changed, once its transaction committed; a bulk statement on the model publishes
    :data:`EVERYTHING`."""
    pending = f"mynagate.changed.{channel}"

    def collect(session: Session, _flush_context: Any) -> None:
        # After the flush: a new row's generated key is known by then (and the session's
        # new/dirty/deleted still list what this flush wrote).
        changed = {key for obj in (*session.new, *session.dirty, *session.deleted)
                   if isinstance(obj, model) for key in keys_of(obj)}
        if changed:
            session.info.setdefault(pending, set()).update(changed)

    def bulk(state: ORMExecuteState) -> None:
        if (state.is_update or state.is_delete) and state.bind_mapper is not None \
                and state.bind_mapper.class_ is model:
            state.session.info.setdefault(pending, set()).add(EVERYTHING)

    def publish(session: Session) -> None:
        keys = session.info.pop(pending, set())
        for key in ([EVERYTHING] if EVERYTHING in keys else keys):
            bus.publish(channel, key)

    def discard(session: Session) -> None:
        session.info.pop(pending, None)

    event.listen(sessions, "after_flush", collect)
    event.listen(sessions, "do_orm_execute", bulk)
    event.listen(sessions, "after_commit", publish)
    event.listen(sessions, "after_rollback", discard)
