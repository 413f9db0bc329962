"""SQL store of the failed-attempt counters (table ``attempt_counter``).

Run on the session's connection, so without the session's autoflush: no
mapped object is a counter row and the table refers to none, so a flush
before these statements changes nothing they see. Without it, a request's
changes wait for the unit of work's one flush at commit (issue 16: the
code's consumption and the verification were flushed separately).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from resim.adapters.db import orm
from resim.adapters.db.stores import SessionHolder
from resim.services.stores.counters import Counter

T = orm.attempt_counter
_KEYS: sa.BindParameter[str] = sa.bindparam("keys", expanding=True)
_READ = sa.select(T).where(T.c.key.in_(_KEYS))
_NEW = {"failures": 0, "last_failure_at": None, "blocked_until": None}
# Create the missing rows and lock and return every one, in one statement (issue
# 16: was an INSERT .. ON CONFLICT DO NOTHING and a SELECT .. FOR UPDATE). The
# conflict's no-op update locks an existing row, in the order of the VALUES
# (the keys come sorted), as the SELECT's FOR UPDATE did in key order.
_CREATE_AND_LOCK: dict[tuple[str, int], Any] = {}  # by dialect and number of keys


def _create_and_lock(dialect: str, count: int) -> Any:
    """The statement for ``count`` keys (bound as k0, k1, ...; ``now``), built once."""
    stmt = _CREATE_AND_LOCK.get((dialect, count))
    if stmt is None:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(T)
        rows: list[dict[str, Any]] = [
            {"key": sa.bindparam(f"k{i}"), "window_start": sa.bindparam("now"), **_NEW}
            for i in range(count)
        ]
        stmt = _CREATE_AND_LOCK[(dialect, count)] = (
            insert.values(rows)
            .on_conflict_do_update(index_elements=["key"], set_={"failures": T.c.failures})
            .returning(*T.c)
        )
    return stmt


_SAVE = (
    sa.update(T)
    .where(T.c.key == sa.bindparam("k"))
    .values(
        failures=sa.bindparam("failures"),
        window_start=sa.bindparam("window_start"),
        last_failure_at=sa.bindparam("last_failure_at"),
        blocked_until=sa.bindparam("blocked_until"),
    )
)
_CLEAR = sa.delete(T).where(T.c.key.in_(_KEYS))


class SqlAttemptCounterStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def lock(self, keys: Sequence[str], now: dt.datetime) -> Mapping[str, Counter]:
        if not keys:
            return {}
        conn = self._uow.session.connection()
        postgres = self._uow.dialect == "postgresql"
        stmt = _create_and_lock("postgresql" if postgres else "sqlite", len(keys))
        params = {"now": now, **{f"k{i}": key for i, key in enumerate(keys)}}
        found = sorted(conn.execute(stmt, params), key=lambda row: str(row.key))
        return {row.key: row for row in found}

    def read(self, keys: Sequence[str]) -> Mapping[str, Counter]:
        if not keys:
            return {}
        conn = self._uow.session.connection()
        return {row.key: row for row in conn.execute(_READ, {"keys": list(keys)})}

    def save(
        self,
        key: str,
        *,
        failures: int,
        window_start: dt.datetime,
        last_failure_at: dt.datetime | None,
        blocked_until: dt.datetime | None,
    ) -> None:
        self._uow.session.connection().execute(
            _SAVE,
            {
                "k": key,
                "failures": failures,
                "window_start": window_start,
                "last_failure_at": last_failure_at,
                "blocked_until": blocked_until,
            },
        )

    def clear(self, keys: Sequence[str]) -> None:
        if keys:
            self._uow.session.connection().execute(_CLEAR, {"keys": list(keys)})
