"""Clients read once per process, not once per request.

Every protocol request names a client, and the same row used to be read two or three times
per SSO flow. Clients change rarely (an admin edits one, rotates a secret, disables it) and
such a change must reach every process at once, so:

- a committed change to a ``Client`` row (from any code path: the registry, dynamic
  registration, the CLI, the demo seed) publishes the client id on the invalidation bus
  (``idp.store.bus``) *after* the commit, from an SQLAlchemy session hook;
- every process drops that entry when it hears the message, and drops everything when its
  bus connection had a gap (messages may have been missed);
- an entry also expires after ``ttl`` seconds, the last line of defence.

Cached rows are detached, read-only snapshots: callers must not change them (the registry
loads its own row in its own session to change it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from idp.store.bus import InvalidationBus, Subscriber
from idp.store.models import Client

CHANNEL = "clients"
_PENDING = "mynagate.clients_changed"


class ClientCache:
    def __init__(self, database: Any, bus: InvalidationBus, *, ttl: float = 60.0,
                 max_entries: int = 10_000, clock=time.monotonic) -> None:
        self._db = database
        self._bus = bus
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Client]] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every invalidation: a load that started before one is not stored, so a
        # reader racing a change can never put the old row back after the change was heard.
        self._generation = 0
        bus.subscribe(CHANNEL, Subscriber(self.forget, self.forget_all))
        _watch_client_changes(database.sessions, bus)

    def get(self, client_id: str) -> Client | None:
        """The client's row (enabled or not), or None for an unknown id."""
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
            return None
        now = self._clock()
        with self._lock:
            hit = self._entries.get(client_id)
            if hit is not None and hit[0] > now:
                self._entries.move_to_end(client_id)
                return hit[1]
            generation = self._generation
        with self._db.read() as db:
            row = db.get(Client, client_id)
        if row is None:  # unknown ids are not cached: random ids must not fill memory
            return None
        with self._lock:
            if generation == self._generation:
                self._entries[client_id] = (now + self._ttl, row)
                self._entries.move_to_end(client_id)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return row

    def forget(self, client_id: str) -> None:
        with self._lock:
            self._generation += 1
            self._entries.pop(client_id, None)

    def forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


def _watch_client_changes(sessions: Any, bus: InvalidationBus) -> None:
    """Publish the ids of clients a session changed, once its transaction committed."""

    def collect(session: Session, _flush_context: Any, _instances: Any) -> None:
        changed = {obj.client_id for obj in (*session.new, *session.dirty, *session.deleted)
                   if isinstance(obj, Client)}
        if changed:
            session.info.setdefault(_PENDING, set()).update(changed)

    def publish(session: Session) -> None:
        for client_id in session.info.pop(_PENDING, ()):
            bus.publish(CHANNEL, client_id)

    def discard(session: Session) -> None:
        session.info.pop(_PENDING, None)

    event.listen(sessions, "before_flush", collect)
    event.listen(sessions, "after_commit", publish)
    event.listen(sessions, "after_rollback", discard)
