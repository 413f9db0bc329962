"""SQL of the regulator's report (:mod:`resim.services.stores.reports`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.stores import SessionHolder
from resim.services.stores.reports import RequestFacts

r, a = orm.replacement_request, orm.audit_event
_START: sa.BindParameter[dt.datetime] = sa.bindparam("start")
_END: sa.BindParameter[dt.datetime] = sa.bindparam("end")
_REQUESTS = (
    sa.select(
        r.c.id,
        r.c.brand_id,
        r.c.state,
        r.c.created_at,
        r.c.completed_at,
        r.c.risk_outcome,
        r.c.step_up_methods,
        r.c.fraud_reported_at,
    )
    .where(
        sa.or_(
            sa.and_(r.c.created_at >= _START, r.c.created_at < _END),
            sa.and_(r.c.completed_at >= _START, r.c.completed_at < _END),
        ),
        r.c.id > sa.bindparam("after_id"),
    )
    .order_by(r.c.id)
    .limit(sa.bindparam("lim"))
)
_EVENTS = sa.select(a.c.object_id, a.c.action, a.c.detail).where(
    a.c.action.in_(("request.cancelled", "request.reported_not_me")),
    a.c.object_type == "request",
    a.c.object_id.in_(sa.bindparam("ids", expanding=True)),
)


class SqlReportQueries:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def requests_in_window(
        self, start: dt.datetime, end: dt.datetime, *, after_id: str, limit: int
    ) -> Sequence[RequestFacts]:
        params = {"start": start, "end": end, "after_id": after_id, "lim": limit}
        return [RequestFacts(*row) for row in self._uow.session.execute(_REQUESTS, params)]

    def request_audit_events(self, request_ids: Sequence[str]) -> Sequence[tuple[str, str, Any]]:
        if not request_ids:
            return []
        rows = self._uow.session.execute(_EVENTS, {"ids": list(request_ids)})
        return [(oid, action, detail) for oid, action, detail in rows]
