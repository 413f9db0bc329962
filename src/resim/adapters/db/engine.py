"""Engines for SQLite (WAL, immediate transactions) and PostgreSQL.

SQLite: every transaction starts with ``BEGIN IMMEDIATE`` (a read-only one,
execution option :data:`READ_ONLY_OPTION`, with a deferred ``BEGIN``) so that a
read-then-write transaction never fails with SQLITE_BUSY_SNAPSHOT under
concurrent writers (the worker runs many threads); ``busy_timeout`` makes
waiters queue instead of failing. WAL lets readers proceed meanwhile.

Every engine is built with ``hide_parameters=True``: a failed statement's
error (and anything that logs it) names no bound value, since those are
MatchingIDs, e-mail addresses, names and tokens (SEC-11). ``echo`` logs
statements without their parameters for the same reason.

``lock_timeout`` (seconds) bounds how long a statement waits for a lock: SQLite's
busy timeout, PostgreSQL's ``lock_timeout``. A wait that long means the
database is overloaded; the error is classified in ``adapters.db.transient``
(503 with Retry-After at the API, a retry with back-off in a job) instead of
holding a request thread and its connection indefinitely.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

# Connection execution option of a read-only transaction: on SQLite it begins
# deferred (no write lock); a write inside it may fail with SQLITE_BUSY.
READ_ONLY_OPTION = "resim_read_only"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int | None = None,
    echo: bool = False,
    lock_timeout: float = 30.0,
) -> sa.Engine:
    """An engine holding at most ``pool_size + max_overflow`` connections
    (``max_overflow`` None: as many as ``pool_size``); waits for a lock at most
    ``lock_timeout`` seconds (SQLite's busy timeout, PostgreSQL's lock_timeout)."""
    overflow = pool_size if max_overflow is None else max_overflow
    if is_sqlite(url):
        engine = sa.create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": lock_timeout},
            pool_size=pool_size,
            max_overflow=overflow,
        )
        _sqlite_pragmas(engine, busy_ms=int(lock_timeout * 1000))
        return engine
    return sa.create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=overflow,
        pool_pre_ping=True,
        connect_args={"options": f"-c lock_timeout={int(lock_timeout * 1000)}"},
    )


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


def _sqlite_pragmas(engine: sa.Engine, *, busy_ms: int = 30000, foreign_keys: bool = True) -> None:
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
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


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
