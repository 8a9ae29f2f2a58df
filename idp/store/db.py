"""Engine and sessions. One :class:`Database` per app; views get a request-scoped session.

Surviving a PostgreSQL restart or failover without a ping on every checkout
(``pool_pre_ping`` costs one round trip per request):

- **Ping only what sat idle.** The pool records when a connection was checked in; at
  checkout, one that rested longer than ``idle_ping_after`` seconds is pinged first, and a
  dead one is replaced before the request sees it (``DisconnectionError`` makes the pool
  retry with a fresh connection). A busy pool cycles its connections in milliseconds and
  pays nothing; a quiet one pays a round trip that nobody is waiting behind.
- **One dead connection retires the pool.** When a statement fails with a disconnect
  error, SQLAlchemy invalidates that connection *and* every connection checked in before
  it (they share the dead server), so after a restart at most the requests already holding
  a connection fail, and the error handler turns those into 503 + ``Retry-After``. There
  are two pools (transactions; autocommit reads and one-statement writes): a disconnect
  on either retires the other's older connections as well, at their next checkout.
- **Bounded lifetime.** ``pool_recycle`` reconnects every connection after
  :data:`RECYCLE_SECONDS`, so after a failover behind a moved DNS name or a proxy no
  connection clings to the old server for long; TCP keepalives notice a server that
  vanished without closing its sockets (a network partition) instead of hanging a worker.
- **Forks.** ``idp serve`` builds the app before gunicorn forks its workers; a connection
  opened in the parent must never be used (or closed: psycopg would say goodbye on the
  parent's socket) in a child, so a checkout in another process drops it unclosed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

#: A pooled connection idle longer than this is pinged before use (seconds).
IDLE_PING_AFTER = 5.0
#: Connections kept per pool and process (there are two pools: transactions, and
#: autocommit reads and one-statement writes), and how many more a burst may open.
POOL_SIZE = 5
POOL_OVERFLOW = 5
#: Every connection is replaced after this long, whatever its health (seconds).
RECYCLE_SECONDS = 1800
# libpq: find a dead peer in about 30 + 3 * 10 seconds, and fail a connect after 3.
_PG_CONNECT_ARGS = {"connect_timeout": 3, "keepalives": 1, "keepalives_idle": 30,
                    "keepalives_interval": 10, "keepalives_count": 3}


class Database:
    def __init__(self, url: str, *, idle_ping_after: float = IDLE_PING_AFTER) -> None:
        kwargs: dict[str, Any] = {"pool_pre_ping": False}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=5,
                          pool_recycle=RECYCLE_SECONDS, connect_args=dict(_PG_CONNECT_ARGS))
        self.url = url
        # When either pool last saw the server drop a connection (time.monotonic()): a
        # connection of either pool opened before then is retired at its next checkout.
        self._disconnect_seen = [0.0]
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            _install_pool_guards(self.engine, idle_ping_after, self._disconnect_seen)
        # Reads and one-statement writes outside a transaction (no BEGIN and COMMIT round
        # trips: the hot path's single-row reads and the grants' one statement). A pool of
        # its own whose connections stay in autocommit: an execution option on the main
        # engine would switch each connection to autocommit at checkout and back at checkin,
        # two driver calls and a reset per use, a quarter of a hot statement's CPU. SQLite
        # has no such mode and keeps its one engine.
        self._autocommit: Engine | None = None
        if not url.startswith("sqlite"):
            self._autocommit = create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)
            _install_pool_guards(self._autocommit, idle_ping_after, self._disconnect_seen)
        #: Shared with every session this database opens (``Session.info``): what a rule
        #: running inside a caller's unit of work needs besides the database (the
        #: short-lived store whose access-token copies a revocation deletes), without
        #: reaching for the Flask app (CLI commands and the workers have none).
        self.session_info: dict[str, Any] = {}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False,
                                     info=self.session_info)
        self._readers = self.sessions if self._autocommit is None else sessionmaker(
            self._autocommit, expire_on_commit=False, info=self.session_info)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        s = self.sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only, each statement on its own (autocommit): for the
        per-request lookups of one row, where a transaction buys nothing. Never write in
        it: nothing is committed."""
        s = self._readers()
        try:
            yield s
        finally:
            s.close()

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A Core connection for ONE statement, a read or a write atomic on its own: on
        PostgreSQL it runs outside a transaction and commits itself (no BEGIN and COMMIT
        round trips: the token grants' hot path); on SQLite, which has no such mode, it is
        one transaction, committed at the end. No ORM session: the hot path's prebuilt
        Core statements need none, and making and closing one cost as much as the
        statement's own execution."""
        if self._autocommit is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._autocommit.connect() as conn:
            yield conn

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine this database runs statements on (for listeners that must see all
        of them: a statement counter, say)."""
        return (self.engine,) if self._autocommit is None else (self.engine, self._autocommit)

    def dispose(self) -> None:
        """Close every pooled connection (both pools): at shutdown, and in tests."""
        for engine in self.engines:
            engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))


class DriverStatement:
    """A hot write's Core statement, rendered to SQL once per dialect and run with
    ``exec_driver_sql``: SQLAlchemy still runs it (its events, its error types, its
    handling of a dropped connection) but skips what it does per call for a Core
    statement (the cache-key walk, the bind processors). The token grants' one write
    went from 0.31 to 0.24 ms of client CPU this way (timed interleaved in one process).
    Reads stay Core statements: SQLAlchemy keeps a compiled statement's result
    description, and builds a text statement's anew per execution (the refresh lookup's
    18 columns: 0.19 ms as Core, 0.23-0.25 ms as driver SQL). What makes a read cheaper
    is fewer columns.

    On PostgreSQL through psycopg only (a driver whose parameters are named
    ``%(name)s``); SQLite and any other driver run the Core statement. For plain columns:
    JSON values are encoded here (``json_params``: the parameters that hold JSON);
    strings, numbers, None and naive UTC datetimes go to psycopg as they are. Rendering
    checks that claim: a parameter whose type would need converting and is not listed
    (a new JSON, Enum or Uuid column) stops it, so it cannot reach the driver raw."""

    def __init__(self, statement: Any, *, json_params: frozenset[str] = frozenset()) -> None:
        self.statement = statement
        self.json_params = json_params
        self._sql: dict[tuple[str, str], str] = {}

    def sql(self, dialect: Any) -> str:
        key = (dialect.name, dialect.driver)
        rendered = self._sql.get(key)
        if rendered is None:
            compiled = self.statement.compile(dialect=dialect)
            converted = {name for name, bind in compiled.binds.items()
                         if bind.type.dialect_impl(dialect).bind_processor(dialect)}
            if converted != set(self.json_params):
                raise TypeError(f"parameters needing conversion {sorted(converted)} are "
                                f"not the JSON ones named {sorted(self.json_params)}")
            rendered = self._sql[key] = str(compiled)
        return rendered

    def execute(self, conn: Connection, params: dict[str, Any]) -> Any:
        dialect = conn.dialect
        if dialect.name != "postgresql" or dialect.paramstyle != "pyformat":
            return conn.execute(self.statement, params)
        if self.json_params:
            params = dict(params)
            for name in self.json_params:
                params[name] = json.dumps(params[name])
        return conn.exec_driver_sql(self.sql(dialect), params)


def dialect_insert(dialect_name: str) -> Any:
    """The INSERT construct of the dialect (``"postgresql"`` or ``"sqlite"``): theirs carry
    ``on_conflict_do_nothing``, SQLAlchemy's generic one does not."""
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect_name]


def _install_pool_guards(engine: Engine, idle_ping_after: float,
                         disconnect_seen: list[float]) -> None:
    """The connect/checkout/checkin/error listeners described in the module docstring.
    ``disconnect_seen`` is shared by the database's two pools: a disconnect met on one
    retires the other's older connections too (they went to the same server, so after a
    restart the first request of each kind need not meet a dead one of its own)."""

    @event.listens_for(engine, "connect")
    def remember_process(_dbapi_conn, record) -> None:  # pragma: no cover - driver callback
        record.info["pid"] = os.getpid()
        record.info["idle_since"] = record.info["opened_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def remember_checkin(_dbapi_conn, record) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "handle_error")
    def remember_disconnect(context) -> None:
        if context.is_disconnect:
            disconnect_seen[0] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def check_on_checkout(dbapi_conn, record, proxy) -> None:
        if record.info.get("pid") != os.getpid():
            # Inherited across fork(): forget it without closing the parent's socket.
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError("connection opened in another process")
        if record.info.get("opened_at", 0.0) < disconnect_seen[0]:
            # Opened before the server dropped a connection of ours: retired (the pool
            # closes it and retries the checkout with a new one).
            raise exc.DisconnectionError("connection older than a disconnect")
        idle = time.monotonic() - record.info.get("idle_since", time.monotonic())
        if idle > idle_ping_after and not _alive(dbapi_conn):
            # The pool invalidates this connection and retries the checkout with a new one.
            raise exc.DisconnectionError("idle connection found dead at checkout")


def _alive(dbapi_conn) -> bool:
    try:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        # The ping opened a transaction (psycopg is not in autocommit): end it, so the
        # connection goes to its user as clean as the pool handed it back.
        dbapi_conn.rollback()
    except Exception:  # noqa: BLE001 - any failure means this connection is unusable
        return False
    return True


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - driver callback
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()
