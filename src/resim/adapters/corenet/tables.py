"""The built-in core network's transactions: writes with retries, reads, atomic groups.

:class:`~resim.adapters.corenet.builtin.BuiltinCoreNetwork` makes its
operations on these. Every write runs in its own transaction on the engine
(never inside a caller's unit of work): on PostgreSQL the rows an operation
touches are locked in IMSI order, on SQLite the transaction begins with
``BEGIN IMMEDIATE``. Unique violations, deadlocks, serialization failures and
"database is locked" are retried from the start with jittered back-off; lock
contention that does not clear raises ``CORE_BUSY``, an unreachable database
``CORE_UNAVAILABLE``.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from resim.adapters.corenet import rules
from resim.adapters.corenet.rules import CoreSubscriber
from resim.adapters.corenet.schema import (
    HOLDER,
    LOG_EVENT,
    READ,
    READ_LOCKED,
    corenet_subscriber,
    update_statement,
)

T = TypeVar("T")
_sub = corenet_subscriber


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CoreTables:
    """The transactions of the built-in core network (see the module docstring):
    settings, the clock, reads, writes with retries, ``atomically`` groups."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Callable[[], dt.datetime] | None = None,
        *,
        max_attempts: int = 8,
    ) -> None:
        self._engine = engine
        self._clock = clock or _utcnow
        self._max_attempts = max_attempts
        self._dialect = engine.dialect.name
        # The open transaction of an ``atomically`` group, per thread.
        self._group = threading.local()
        self._insert_new: sa.Insert | None = None
        if self._dialect in ("postgresql", "sqlite"):
            mod = postgresql if self._dialect == "postgresql" else sqlite
            self._insert_new = mod.insert(_sub).on_conflict_do_nothing().returning(_sub.c.imsi)

    @property
    def serialised_writes(self) -> bool:
        """True on SQLite: every write takes the database's one write lock, so a
        caller that writes too (the worker's database thread) should make these
        calls on that same thread rather than queue for the lock from another."""
        return self._dialect == "sqlite"

    def atomically(self, operations: Sequence[Callable[[], None]]) -> None:
        """Make these calls (each one of this core network's own write operations,
        made on this thread) in ONE transaction: all take effect or none does.

        The cut-over's provision, holds, move and retire are one commit instead
        of four, and their history rows (``corenet_event``, which nothing reads
        to decide) one INSERT at the end. On contention the whole group is
        retried from the start, like a single operation; an operation that
        raises rolls back those before it.
        """

        def work(conn: sa.Connection) -> None:
            self._group.conn, self._group.events = conn, []
            try:
                for operation in operations:
                    operation()
                if self._group.events:  # the group's history rows, in order, at once
                    conn.execute(LOG_EVENT, self._group.events)
            finally:
                self._group.conn, self._group.events = None, None

        self._write(work)

    def _now(self) -> dt.datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now.astimezone(dt.UTC)

    def _read(
        self, conn: sa.Connection, imsis: Iterable[str | None], *, lock: bool = False
    ) -> dict[str, CoreSubscriber]:
        keys = sorted({i for i in imsis if i is not None})
        if not keys:
            return {}
        # ORDER BY before FOR UPDATE: PostgreSQL locks the rows in that order,
        # so every operation takes its locks in one global order (no deadlock).
        stmt = READ_LOCKED if lock and self._dialect == "postgresql" else READ
        return {
            r.imsi: CoreSubscriber(
                imsi=r.imsi,
                msisdn=r.msisdn,
                enabled=r.enabled,
                retired=r.retired,
                sms_hold_until=r.sms_hold_until,
                port_out_block_until=r.port_out_block_until,
                updated_at=r.updated_at,
                attached_at=r.attached_at,
            )
            for r in conn.execute(stmt, {"imsis": keys})
        }

    @staticmethod
    def _holder(conn: sa.Connection, msisdn: str) -> str | None:
        found = conn.execute(HOLDER, {"msisdn": msisdn}).scalar()
        return None if found is None else str(found)

    @staticmethod
    def _update(conn: sa.Connection, imsi: str, now: dt.datetime, **values: Any) -> None:
        values["updated_at"] = now
        params = {f"b_{c}": v for c, v in values.items()}
        params["b_imsi"] = imsi
        conn.execute(update_statement(frozenset(values)), params)

    def _log(
        self,
        conn: sa.Connection,
        imsi: str,
        msisdn: str | None,
        operation: str,
        now: dt.datetime,
    ) -> None:
        row = {"imsi": imsi, "msisdn": msisdn, "operation": operation, "at": now}
        events: list[dict[str, Any]] | None = getattr(self._group, "events", None)
        if events is not None and getattr(self._group, "conn", None) is conn:
            events.append(row)  # written with the rest of the ``atomically`` group
        else:
            conn.execute(LOG_EVENT, row)

    def _begin_immediate(self, conn: sa.Connection) -> None:
        """Take SQLite's write lock up front, so read-then-write cannot hit SQLITE_BUSY."""
        if self._dialect != "sqlite":
            return
        dbapi = conn.connection.dbapi_connection
        # An engine configured like resim's own (BEGIN IMMEDIATE on "begin") is
        # already in a transaction here; do not begin a second one.
        if dbapi is not None and not getattr(dbapi, "in_transaction", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _write(self, work: Callable[[sa.Connection], T]) -> T:
        group: sa.Connection | None = getattr(self._group, "conn", None)
        if group is not None:  # inside ``atomically``: its transaction, its retries
            return work(group)
        last: Exception | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                # Jittered back-off: concurrent losers should not retry in step.
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
            try:
                with self._engine.begin() as conn:
                    self._begin_immediate(conn)
                    return work(conn)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                # Unique violation from a concurrent binder, deadlock victim,
                # serialization failure, "database is locked", or a dropped
                # connection: all worth another try from the start.
                last = exc
            except sa.exc.DBAPIError as exc:
                raise rules.unavailable(type(exc.orig).__name__) from exc
        if isinstance(last, sa.exc.OperationalError) and last.connection_invalidated:
            raise rules.unavailable("database connection lost") from last
        if isinstance(last, sa.exc.OperationalError) and not _is_contention(last):
            raise rules.unavailable(type(last.orig).__name__) from last
        raise rules.busy(f"gave up after {self._max_attempts} attempts") from last

    def _read_only(self, read: Callable[[sa.Connection], T]) -> T:
        group: sa.Connection | None = getattr(self._group, "conn", None)
        if group is not None:
            return read(group)
        try:
            with self._engine.connect() as conn:
                return read(conn)
        except sa.exc.DBAPIError as exc:
            raise rules.unavailable(type(exc.orig).__name__) from exc


def _is_contention(exc: sa.exc.OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(word in text for word in ("locked", "deadlock", "serializ", "busy"))
