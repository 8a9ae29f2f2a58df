"""Clients read once per process, not once per request (``idp.store.row_cache``).

Every protocol request names a client, and the same row used to be read two or three times
per SSO flow. A committed change to a client (the registry, dynamic registration, the CLI,
the demo seed: any writer) drops it in every process. Unknown ids are not cached: random
ids sent by an outsider must not fill memory.
"""

from __future__ import annotations

from typing import Any

from idp.store.bus import InvalidationBus
from idp.store.models import Client
from idp.store.row_cache import RowCache, watch_changes

CHANNEL = "clients"


class ClientCache(RowCache[Client]):
    def __init__(self, database: Any, bus: InvalidationBus, **options: Any) -> None:
        self._db = database
        super().__init__(CHANNEL, bus, self._read, **options)
        watch_changes(database.sessions, bus, Client, CHANNEL, lambda row: [row.client_id])

    def _read(self, client_id: Any) -> Client | None:
        with self._db.read() as db:
            return db.get(Client, client_id)

    def get(self, client_id: Any) -> Client | None:  # type: ignore[override]
        """The client's row (enabled or not), or None for an unknown id."""
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
            return None
        return super().get(client_id)

    def forget(self, client_id: str) -> None:
        self.forget_matching(client_id)
