"""Faults a test can put in the provider's way, as they happen for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def redis_drops_the_batch_holding(store: Any, key_part: str, *,
                                  after_running: bool = False) -> Iterator[list[Any]]:
    """Redis drops the connection as the store's next batch writing a key with ``key_part``
    in it is sent (what a Redis restart or failover does in the middle of a request); every
    other round trip goes through. ``after_running``: Redis ran the batch first, and only
    its answer is lost (a timeout, a failover just after): the outcome is unknown to the
    provider. Yields the batches refused, for the test to look at."""
    import redis

    clients, refused = store._clients, []
    real_send = clients.send

    def send(pipe: Any) -> list[Any]:
        writes = [str(arg) for args, _options in pipe.command_stack for arg in args]
        if refused or not any(key_part in arg for arg in writes):
            return real_send(pipe)
        refused.append(writes)
        if after_running:
            real_send(pipe)
            raise redis.TimeoutError("Timeout reading from socket")
        raise redis.ConnectionError("Connection closed by server.")

    clients.send = send
    try:
        yield refused
    finally:
        del clients.send
