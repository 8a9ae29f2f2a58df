"""A throw-away PostgreSQL database: created empty, dropped afterwards (connections ended
first). The test suite and the benchmarks each run on one of their own, so parallel runs
on a shared server never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new database named ``prefix`` + random hex, created
    through ``admin_url`` (an account that may CREATE DATABASE). Creation errors propagate:
    the caller says what a missing server means for it."""
    name = prefix + uuid.uuid4().hex[:10]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        admin.dispose()
        raise
    try:
        # Through SQLAlchemy's URL, so a query (``?host=/var/run/postgresql``, a socket)
        # is kept.
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
