"""Each thread's own Redis client, holding one connection of the shared pool as its own.

A request makes several Redis calls in a row from one thread. A pooled call takes a
connection out under the pool's lock and puts it back each time: ~30% of a command's CPU in
redis-py. Here a thread keeps its connection while it lives (a gunicorn worker's threads
live as long as the worker; a thread that ends gives its connection back when its client is
freed). What the pool would check at checkout and at return is checked before each use
instead: a connection the server closed (its idle timeout, a restart) is connected afresh,
and one the pool no longer owns (a Sentinel named another primary while the thread held it;
a forked child) is given back for a new one. After a failed call the caller lets it go.
A batch's pipeline (:meth:`ThreadClients.pipeline`) is sent on the same kept connection:
taken from the pool and given back per pipeline, with four threads contending for the
pool's lock, it cost a third more CPU (~145 against ~95 us for a two-command pipeline).
A Redis Cluster client routes each key to its node itself: it is used as it is.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from typing import Any

from redis.client import Pipeline


class _KeptConnectionPipeline(Pipeline):
    """A pipeline sent on a connection its thread keeps: when it is done it forgets that
    connection instead of returning it to the pool (the thread's client still holds it);
    any other it took from the pool goes back as usual."""

    kept: Any = None

    def reset(self) -> None:
        if self.connection is not None and self.connection is self.kept:
            self.connection = None
        self.kept = None
        super().reset()


class ThreadClients:
    def __init__(self, shared: Any, errors: tuple[type[BaseException], ...], *,
                 per_thread: bool) -> None:
        self._shared = shared
        self._errors = errors
        self._per_thread = per_thread  # False for a Redis Cluster client
        self._local = threading.local()

    def here(self) -> Any:
        """This thread's client. Raises what redis-py raises when Redis cannot be reached
        (a new client takes its connection at once)."""
        if not self._per_thread:
            return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            import redis

            client = redis.Redis(connection_pool=self._shared.connection_pool,
                                 single_connection_client=True)
            self._local.client = client
            return client
        held = client.connection
        if held is None or held.pid != os.getpid() \
                or not client.connection_pool.owns_connection(held):
            # (The pool's own pid check sees a fork only once one of its methods has run
            # in the child: the connection's pid is checked here first.)
            self.let_go()
            return self.here()
        try:
            if held.can_read():  # before a command: only a closed connection has anything
                held.disconnect()
        except self._errors:
            held.disconnect()
        return client

    def pipeline(self) -> Any:
        """A pipeline (no transaction) to fill now and send with :meth:`send`, which puts
        it on this thread's connection only then: making one never touches Redis."""
        if not self._per_thread:
            return self._shared.pipeline(transaction=False)
        shared = self._shared
        return _KeptConnectionPipeline(shared.connection_pool, shared.response_callbacks,
                                       transaction=False, shard_hint=None)

    def send(self, pipe: Any) -> list[Any]:
        """Send a pipeline of :meth:`pipeline`. Raises what redis-py raises; the caller
        then lets this thread's connection go."""
        if not isinstance(pipe, _KeptConnectionPipeline):
            return pipe.execute()
        if pipe.connection is not None or pipe.watching:
            # Something ran on it before the send (a WATCH, on a connection of the pool's
            # own, which its reset() gives back): sending the rest on the thread's would
            # split one transaction over two connections. Batches only queue writes.
            raise RuntimeError("a batch's pipeline ran a command before it was sent")
        client = self.here()
        # The lock the client takes for each command of its own: redis-py's re-auth (a
        # rotating credential) sends AUTH from another thread under it, so holding it
        # keeps that AUTH out of the middle of the batch.
        with client.single_connection_lock:
            pipe.connection = pipe.kept = client.connection
            return pipe.execute()

    def let_go(self) -> None:
        """Give this thread's connection back to the pool (which drops one it no longer
        owns); the next call takes one anew."""
        client = self._local.__dict__.pop("client", None)
        if client is not None and client is not self._shared:
            with suppress(*self._errors):  # it is being let go anyway
                client.close()
