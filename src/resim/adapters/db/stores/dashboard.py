"""SQL of the dashboard's read model (:mod:`resim.services.stores.dashboard`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.scoping import requests_where, sim_changes_where
from resim.adapters.db.stores import SessionHolder
from resim.domain.workflow import State
from resim.services.access.tenancy import Scope
from resim.services.stores.dashboard import ChangeAt, RequestAt

r, a, sc, ln = orm.replacement_request, orm.audit_event, orm.sim_change, orm.line
_WHO = (r.c.id, r.c.brand_id, r.c.channel, r.c.actor, r.c.msisdn)
_START: sa.BindParameter[dt.datetime] = sa.bindparam("start")
_END: sa.BindParameter[dt.datetime] = sa.bindparam("end")


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _request_at(row: Any) -> RequestAt:
    return RequestAt(row[0], row[1], _value(row[2]), row[3] or None, row[4], row[5], row[6])


class SqlDashboardQueries:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def _rows(self, query: Any, start: dt.datetime, end: dt.datetime) -> Sequence[RequestAt]:
        rows = self._uow.session.execute(query, {"start": start, "end": end})
        return [_request_at(row) for row in rows]

    def completed(self, start: dt.datetime, end: dt.datetime, scope: Scope) -> Sequence[RequestAt]:
        query = sa.select(*_WHO, r.c.completed_at, r.c.created_at).where(
            r.c.completed_at >= _START, r.c.completed_at < _END, requests_where(scope)
        )
        return self._rows(query, start, end)

    def fraud_reported(
        self, start: dt.datetime, end: dt.datetime, scope: Scope
    ) -> Sequence[RequestAt]:
        query = sa.select(*_WHO, r.c.fraud_reported_at, r.c.created_at).where(
            r.c.fraud_reported_at >= _START, r.c.fraud_reported_at < _END, requests_where(scope)
        )
        return self._rows(query, start, end)

    def request_events(
        self, action: str, start: dt.datetime, end: dt.datetime, scope: Scope
    ) -> Sequence[RequestAt]:
        query = (
            sa.select(*_WHO, a.c.at, r.c.created_at)
            .join(r, r.c.id == a.c.object_id)
            .where(
                a.c.action == action,
                a.c.object_type == "request",
                a.c.at >= _START,
                a.c.at < _END,
                requests_where(scope),
            )
            .order_by(a.c.seq)
        )
        return self._rows(query, start, end)

    def sim_changes(self, start: dt.datetime, end: dt.datetime, scope: Scope) -> Sequence[ChangeAt]:
        session = self._uow.session
        params = {"start": start, "end": end}
        in_window = sa.select(sc.c.request_id).where(
            sc.c.changed_at >= _START, sc.c.changed_at < _END
        )
        channels = {
            rid: _value(channel)
            for rid, channel in session.execute(
                sa.select(r.c.id, r.c.channel).where(r.c.id.in_(in_window)), params
            )
        }
        changes = (
            sa.select(sc.c.id, sc.c.changed_at, sc.c.request_id, sc.c.msisdn, ln.c.brand_id)
            .join(ln, ln.c.id == sc.c.line_id)
            .where(sc.c.changed_at >= _START, sc.c.changed_at < _END, sim_changes_where(scope))
        )
        return [
            ChangeAt(sid, at, rid, msisdn, brand, channels.get(rid) if rid else None)
            for sid, at, rid, msisdn, brand in session.execute(changes, params)
        ]

    def queue(self, scope: Scope) -> tuple[int, dt.datetime | None]:
        waiting, oldest = self._uow.session.execute(
            sa.select(sa.func.count(), sa.func.min(r.c.updated_at)).where(
                r.c.state == State.IN_REVIEW, requests_where(scope)
            )
        ).one()
        return int(waiting), oldest

    def brand_names(self, scope: Scope) -> dict[str, tuple[str, str]]:
        b = orm.brand
        rows = self._uow.session.execute(
            sa.select(b.c.id, b.c.name, b.c.timezone).where(
                sa.true() if scope.brand_id is None else b.c.id == scope.brand_id
            )
        )
        return {row.id: (row.name, row.timezone) for row in rows}

    def staff_names(self, scope: Scope) -> dict[str, str]:
        st = orm.staff_user
        rows = self._uow.session.execute(
            sa.select(st.c.id, st.c.display_name).where(
                sa.true()
                if scope.brand_id is None
                else sa.or_(st.c.brand_id == scope.brand_id, st.c.brand_id.is_(None))
            )
        )
        return {row.id: row.display_name for row in rows}
