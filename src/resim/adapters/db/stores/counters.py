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
_READ_ORDERED = _READ.order_by(T.c.key)
_READ_LOCKED = _READ_ORDERED.with_for_update()
_NEW = {"failures": 0, "last_failure_at": None, "blocked_until": None}
_CREATE: dict[str, Any] = {
    "postgresql": postgresql.insert(T).on_conflict_do_nothing(index_elements=["key"]),
    "sqlite": sqlite.insert(T).on_conflict_do_nothing(index_elements=["key"]),
}
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
        # One multi-row INSERT .. ON CONFLICT DO NOTHING: the values are bound per call.
        rows = [{"key": k, "window_start": now, **_NEW} for k in keys]
        conn.execute(_CREATE["postgresql" if postgres else "sqlite"].values(rows))
        query = _READ_LOCKED if postgres else _READ_ORDERED
        return {row.key: row for row in conn.execute(query, {"keys": list(keys)})}

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
