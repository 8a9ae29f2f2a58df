"""Faults a test can put in the provider's way, as they happen for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def redis_drops_the_batch_holding(store: Any, key_part: str) -> Iterator[list[Any]]:
    """Redis drops the connection as the store's next batch writing a key with ``key_part``
    in it is sent (what a Redis restart or failover does in the middle of a request); every
    other round trip goes through. Yields the batches refused, for the test to look at."""
    import redis

    clients, refused = store._clients, []
    real_send = clients.send

    def send(pipe: Any) -> list[Any]:
        writes = [str(arg) for args, _options in pipe.command_stack for arg in args]
        if not refused and any(key_part in arg for arg in writes):
            refused.append(writes)
            raise redis.ConnectionError("Connection closed by server.")
        return real_send(pipe)

    clients.send = send
    try:
        yield refused
    finally:
        del clients.send
