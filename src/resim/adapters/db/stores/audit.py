"""SQL reads of the audit log (tables ``audit_event`` and ``audit_chain_head``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import audit_store, orm
from resim.adapters.db.stores import SessionHolder
from resim.services.stores.audit import AUDIT_COLUMNS, Event, Head, Link

t = orm.audit_event
_ROWS = (
    sa.select(*(t.c[name] for name in AUDIT_COLUMNS))
    .where(t.c.seq > sa.bindparam("after_seq"))
    .order_by(t.c.seq)
    .limit(sa.bindparam("lim"))
)
_ROWS_UPTO = _ROWS.where(t.c.seq <= sa.bindparam("upto_seq"))
_NEWEST = sa.select(t.c.seq, t.c.id).order_by(t.c.seq.desc()).limit(1)
_FIRST_FROM = sa.select(sa.func.min(t.c.seq)).where(t.c.at >= sa.bindparam("start"))
_LAST_BEFORE = sa.select(sa.func.max(t.c.seq)).where(t.c.at < sa.bindparam("end"))
_HASH_OF = sa.select(t.c.hash).where(t.c.seq == sa.bindparam("s"))
_LINK = sa.select(t.c.seq, t.c.hash, t.c.at).order_by(t.c.seq.desc()).limit(1)
_LINK_BELOW = _LINK.where(t.c.seq < sa.bindparam("stop"))
_HAS_EVENT = (
    sa.select(t.c.seq)
    .where(t.c.action == sa.bindparam("act"), t.c.object_id == sa.bindparam("oid"))
    .limit(1)
)
_EVENT_COLS = (t.c.seq, t.c.at, t.c.actor, t.c.action, t.c.object_type, t.c.detail)
_LATEST = (
    sa.select(*_EVENT_COLS)
    .where(t.c.action == sa.bindparam("act"), t.c.object_id == sa.bindparam("oid"))
    .order_by(t.c.seq.desc())
    .limit(1)
)
_LATEST_TYPED = _LATEST.where(t.c.object_type == sa.bindparam("otype"))
_EVENTS_OF = (
    sa.select(*_EVENT_COLS)
    .where(t.c.object_type == sa.bindparam("otype"), t.c.object_id == sa.bindparam("oid"))
    .order_by(t.c.seq)
)
_TRAIL = (
    sa.select(*_EVENT_COLS)
    .where(
        sa.or_(
            t.c.object_id == sa.bindparam("rid"),
            sa.and_(
                t.c.object_type == "sim",
                t.c.object_id.in_(sa.bindparam("sims", expanding=True)),
            ),
            sa.and_(t.c.object_type == "line", t.c.object_id == sa.bindparam("lid")),
        )
    )
    .where(t.c.at >= sa.bindparam("since"))
    .order_by(t.c.seq)
    .limit(sa.bindparam("lim"))
)


def _event(row: Any) -> Event:
    return Event(row.seq, row.at, row.actor, row.action, row.object_type, row.detail or {})


class SqlAuditLogStore:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def head(self) -> Head | None:
        return audit_store.read_head(self._uow.session)

    def rows(self, *, after_seq: int, upto_seq: int | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"after_seq": after_seq, "lim": limit}
        query = _ROWS
        if upto_seq is not None:
            query, params["upto_seq"] = _ROWS_UPTO, upto_seq
        return [dict(row) for row in self._uow.session.execute(query, params).mappings()]

    def newest(self) -> tuple[int, str] | None:
        row = self._uow.session.execute(_NEWEST).first()
        return (int(row.seq), str(row.id)) if row is not None else None

    def seq_bounds(self, start: dt.datetime, end: dt.datetime) -> tuple[int | None, int | None]:
        session = self._uow.session
        first = session.scalar(_FIRST_FROM, {"start": start})
        last = session.scalar(_LAST_BEFORE, {"end": end})
        return first, last

    def hash_of(self, seq: int) -> str | None:
        return self._uow.session.scalar(_HASH_OF, {"s": seq})

    def last_link_before(self, before: dt.datetime) -> Link | None:
        session = self._uow.session
        stop = session.scalar(_FIRST_FROM, {"start": before})
        row = (
            session.execute(_LINK).first()
            if stop is None
            else session.execute(_LINK_BELOW, {"stop": stop}).first()
        )
        return Link(row.seq, row.hash, row.at) if row is not None else None

    def prune_through(self, link: Link) -> int:
        return audit_store.prune_through(
            self._uow.session, seq=link.seq, row_hash=link.hash, at=link.at
        )

    def has_event(self, *, action: str, object_id: str) -> bool:
        found = self._uow.session.scalar(_HAS_EVENT, {"act": action, "oid": object_id})
        return found is not None

    def latest(
        self, *, action: str, object_id: str, object_type: str | None = None
    ) -> Event | None:
        params = {"act": action, "oid": object_id}
        query = _LATEST
        if object_type is not None:
            query, params["otype"] = _LATEST_TYPED, object_type
        row = self._uow.session.execute(query, params).first()
        return _event(row) if row is not None else None

    def events_of(self, *, object_type: str, object_id: str) -> Sequence[Event]:
        rows = self._uow.session.execute(_EVENTS_OF, {"otype": object_type, "oid": object_id})
        return [_event(row) for row in rows]

    def request_trail(
        self,
        *,
        request_id: str,
        sim_iccids: Sequence[str],
        line_id: str,
        since: dt.datetime,
        limit: int,
    ) -> Sequence[Event]:
        params = {
            "rid": request_id,
            "sims": list(sim_iccids),
            "lid": line_id,
            "since": since,
            "lim": limit,
        }
        return [_event(row) for row in self._uow.session.execute(_TRAIL, params)]
