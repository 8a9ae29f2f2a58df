"""The WSGI entry gunicorn loads for the bench: ``create_app()`` on the ``IDP_*`` environment
bench/run.py sets, with the Redis key prefix of this run (BENCH_REDIS_PREFIX), so a bench run
never touches the keys of another run or of a test suite sharing the Redis server."""

from __future__ import annotations

import os

from idp.app import create_app

app = create_app()
_prefix = os.environ.get("BENCH_REDIS_PREFIX")
_store = app.extensions["mynagate"].store
if _prefix and hasattr(_store, "flush_prefix"):
    # RedisStore has no setting for its prefix; the test suite sets it the same way.
    _store._p = _prefix
