"""Engines for SQLite (WAL, immediate transactions) and PostgreSQL.

SQLite: every transaction starts with ``BEGIN IMMEDIATE`` (a read-only one,
execution option :data:`READ_ONLY_OPTION`, with a deferred ``BEGIN``) so that a
read-then-write transaction never fails with SQLITE_BUSY_SNAPSHOT under
concurrent writers (the worker runs many threads); ``busy_timeout`` makes
waiters queue instead of failing. WAL lets readers proceed meanwhile. Writers
of a database file first pass its :class:`~resim.adapters.db.write_gate.WriteGate`,
which wakes the next one the moment a transaction ends, where SQLite's busy
handler would sleep up to 100 ms between tries.

Every engine is built with ``hide_parameters=True``: a failed statement's
error (and anything that logs it) names no bound value, since those are
MatchingIDs, e-mail addresses, names and tokens (SEC-11). ``echo`` logs
statements without their parameters for the same reason.

PostgreSQL (psycopg 3): the pool pings a connection only after it sat idle,
many-row INSERTs are one statement, and a statement is prepared on its second
run on a connection (see :func:`_postgresql_client`, :func:`_ping_when_idle`):
on PostgreSQL each statement is a round trip, which costs the client and the
server far more CPU than SQLite's in-process call (issue 16).

``lock_timeout`` (seconds) bounds how long a statement waits for a lock: SQLite's
busy timeout, PostgreSQL's ``lock_timeout``. A wait that long means the
database is overloaded; the error is classified in ``adapters.db.transient``
(503 with Retry-After at the API, a retry with back-off in a job) instead of
holding a request thread and its connection indefinitely.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from resim.adapters.db import write_gate

# Connection execution option of a read-only transaction: on SQLite it begins
# deferred (no write lock); a write inside it may fail with SQLITE_BUSY.
READ_ONLY_OPTION = "resim_read_only"

# PostgreSQL: a pooled connection idle this long (seconds) is pinged before use
# (_ping_when_idle); prepared statements kept per connection (_postgresql_client).
PING_AFTER_IDLE_SECONDS = 1.0
PREPARED_MAX = 400
PREPARE_THRESHOLD = 1
_LAST_CHECKIN = "resim_last_checkin"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int | None = None,
    echo: bool = False,
    lock_timeout: float = 30.0,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
) -> sa.Engine:
    """An engine holding at most ``pool_size + max_overflow`` connections
    (``max_overflow`` None: as many as ``pool_size``); waits for a lock at most
    ``lock_timeout`` seconds (SQLite's busy timeout, PostgreSQL's lock_timeout).
    PostgreSQL: a pooled connection idle ``ping_after_idle`` seconds or more is
    pinged before use (:func:`_ping_when_idle`)."""
    overflow = pool_size if max_overflow is None else max_overflow
    if is_sqlite(url):
        path = write_gate.lock_path(sa.make_url(url).database)
        gate = None if path is None else write_gate.WriteGate(path, timeout=lock_timeout)
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": lock_timeout}
        if gate is not None:
            connect_args["factory"] = write_gate.GatedConnection
        engine = sa.create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args=connect_args,
            pool_size=pool_size,
            max_overflow=overflow,
        )
        _sqlite_pragmas(engine, busy_ms=int(lock_timeout * 1000), gate=gate)
        return engine
    engine = sa.create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=overflow,
        connect_args={
            "options": f"-c lock_timeout={int(lock_timeout * 1000)}",
            "prepare_threshold": PREPARE_THRESHOLD,
        },
    )
    _postgresql_client(engine)
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _postgresql_client(engine: sa.Engine) -> None:
    """Fewer statements and round trips per unit of work on PostgreSQL (issue 16).

    An INSERT of many rows is one multi-row statement (SQLAlchemy's
    "insertmanyvalues", as its psycopg2 dialect does), not psycopg's pipelined
    executemany, which binds and executes every row as a statement of its own
    in the client and in the server. Its text varies with the number of rows,
    so each connection keeps more prepared statements (psycopg evicts beyond
    ``prepared_max``, each eviction a round trip of its own).

    psycopg prepares a statement on its second run on a connection
    (``prepare_threshold`` 1; its default, 5, left each of the API's and
    worker's pooled connections parsing and planning every statement five
    times, about an eighth of all executions in a bench run of 600). A
    statement run once (an ``IN`` list of unusual length) is never prepared."""
    engine.dialect.use_insertmanyvalues_wo_returning = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.prepared_max = PREPARED_MAX


def _ping_when_idle(engine: sa.Engine, after: float) -> None:
    """A pooled connection idle for ``after`` seconds or more is
    pinged before it is handed out (the dialect's ping, an autocommit
    ``SELECT 1``; on failure the pool's connections are replaced, as with
    SQLAlchemy's ``pool_pre_ping``); one checked in more recently was working a
    moment ago and goes out without the round trip, which ``pool_pre_ping``
    would spend on every unit of work (issue 16). If the server went away
    within that moment, the unit's first statement fails as a lost
    connection: SQLAlchemy then drops the pool's connections, and
    ``adapters.db.transient`` classifies the error as retryable ("unavailable"),
    as it does a connection lost mid-transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_CHECKIN] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_CHECKIN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get(_LAST_CHECKIN, 0.0)
        if idle < after:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError() from exc
            raise
        if not alive:
            raise sa.exc.InvalidatePoolError()


def create_admin_engine(url: str, *, sqlite_foreign_keys: bool = True) -> sa.Engine:
    """An engine without pooling for one-off commands (migrations).

    ``sqlite_foreign_keys=False``: SQLite does not enforce foreign keys on its
    connections, as its documentation asks while a table is rebuilt (the only
    way it changes a column's type); the caller checks them afterwards
    (``PRAGMA foreign_key_check``). Ignored for PostgreSQL.
    """
    engine = sa.create_engine(url, poolclass=NullPool, hide_parameters=True)
    if is_sqlite(url):
        _sqlite_pragmas(engine, foreign_keys=sqlite_foreign_keys)
    return engine


def _sqlite_pragmas(
    engine: sa.Engine,
    *,
    busy_ms: int = 30000,
    foreign_keys: bool = True,
    gate: write_gate.WriteGate | None = None,
) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below control transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A read-only unit of work (``ctx.uow(read_only=True)``) begins a
        # deferred transaction: a WAL snapshot that never takes the write lock.
        if conn.get_execution_options().get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        elif gate is None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            raw = conn.connection.dbapi_connection
            if not write_gate.enter(gate, raw):  # what SQLite says after busy_timeout
                raise sa.exc.OperationalError(
                    "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
                )
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                write_gate.leave(raw)
                raise


def create_read_engine(
    url: str, *, pool_size: int = 20, max_overflow: int | None = None, pg_options: str = ""
) -> sa.Engine:
    """An engine for single-statement reads outside explicit transactions.

    SQLite: the driver in autocommit mode and no ``BEGIN IMMEDIATE`` hook, so a
    read is its own WAL snapshot and never queues behind a writer. PostgreSQL:
    ``AUTOCOMMIT``, so a read is one round trip (no BEGIN/COMMIT). Never write
    through it. At most ``pool_size + max_overflow`` connections (None: as many
    as ``pool_size``). ``pg_options``: PostgreSQL settings for each connection
    (libpq ``options``, e.g. ``-c jit=off``).
    """
    overflow = pool_size if max_overflow is None else max_overflow
    if is_sqlite(url):
        engine = sa.create_engine(
            url,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=overflow,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        return engine
    return sa.create_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=overflow,
        pool_recycle=3600,  # no pre-ping: it would double the round trips of the hot path
        isolation_level="AUTOCOMMIT",
        connect_args={"options": pg_options} if pg_options else {},
    )


def connection_limit(engine: sa.Engine) -> tuple[int, int] | None:
    """PostgreSQL: (``max_connections``, the slots of it reserved for superusers
    and ``pg_use_reserved_connections``); SQLite: None (no server, no limit)."""
    if is_sqlite(engine.url.render_as_string()):
        return None
    with engine.connect() as conn:
        most = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
        reserved = int(conn.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
        # PostgreSQL 16 adds reserved_connections; older servers: none.
        extra = conn.execute(
            sa.text("SELECT current_setting('reserved_connections', true)")
        ).scalar()
    return most, reserved + int(extra or 0)
