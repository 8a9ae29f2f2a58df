"""The WSGI entry gunicorn loads for the bench: ``create_app()`` on the ``IDP_*`` environment
bench/run.py sets, with the Redis key prefix of this run (BENCH_REDIS_PREFIX), so a bench run
never touches the keys of another run or of a test suite sharing the Redis server."""

from __future__ import annotations

import os

from idp.app import create_app
from idp.ops.heap import freeze_again_later, freeze_what_is_held

app = create_app()
# As `idp serve` does (idp.ops.heap); gunicorn imports this module in the worker itself.
freeze_what_is_held()
freeze_again_later()
_prefix = os.environ.get("BENCH_REDIS_PREFIX")
_store = app.extensions["mynagate"].store
if _prefix and hasattr(_store, "flush_prefix"):
    # RedisStore has no setting for its prefix; the test suite sets it the same way.
    _store._p = _prefix

if os.environ.get("BENCH_CPU_PER_PATH"):
    # A developer's lens (not used by make bench): the worker thread's CPU per request,
    # summed by path and written to this file when the worker exits, to see which of a
    # flow's requests costs what inside the server (gunicorn's own loop excluded).
    import atexit
    import json
    import threading
    import time
    from collections import defaultdict

    _cpu: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    _lock = threading.Lock()
    _inner = app.wsgi_app

    def _measured(environ, start_response):
        began = time.thread_time()
        try:
            return _inner(environ, start_response)
        finally:
            spent = time.thread_time() - began
            with _lock:
                entry = _cpu[environ.get("PATH_INFO", "?")]
                entry[0] += 1
                entry[1] += spent

    app.wsgi_app = _measured

    @atexit.register
    def _write() -> None:
        path = f"{os.environ['BENCH_CPU_PER_PATH']}.{os.getpid()}"
        with open(path, "w") as out:
            json.dump({k: {"requests": n, "cpu_ms_each": 1000 * s / max(n, 1)}
                       for k, (n, s) in _cpu.items()}, out, indent=1)
