"""SQL of the small read-only look-ups (:mod:`resim.services.stores.lookups`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.scoping import requests_where
from resim.adapters.db.stores import SessionHolder
from resim.domain.model import Channel, Reason, ReplacementRequest, SimForm
from resim.domain.workflow import State
from resim.services.access.tenancy import Scope
from resim.services.stores.lookups import ChangeSeen, NumberSeen

_s, _r, _j = orm.sim.c, orm.replacement_request.c, orm.job.c
_STOCK = (
    sa.select(_s.brand_id, _s.iccid)
    .where(_s.form == SimForm.PHYSICAL, orm.SIM_IN_STOCK)
    .order_by(_s.brand_id, _s.iccid)
)
_STOCK_OF_BRAND = _STOCK.where(_s.brand_id == sa.bindparam("brand"))
_sc = orm.sim_change.c
_SIM_CHANGES = (
    sa.select(_sc.changed_at, _sc.old_iccid, _sc.new_iccid)
    .where(_sc.line_id == sa.bindparam("line"))
    .order_by(_sc.changed_at.desc())
    .limit(sa.bindparam("lim"))
)
_JOB_FOR_LINE = (
    sa.select(_j.id)
    .where(
        _j.kind == sa.bindparam("kind"),
        _j.state.in_(["pending", "running"]),
        _j.payload["line_id"].as_string() == sa.bindparam("line"),
    )
    .limit(1)
)
_OPENED = sa.select(sa.func.count(), sa.func.min(_r.created_at)).where(
    _r.actor == sa.bindparam("actor"), _r.created_at > sa.bindparam("since")
)
_b, _l = orm.brand.c, orm.line.c
_COUNTRIES = sa.select(_b.country).distinct()
_NUMBERS = (
    sa.select(_l.msisdn, _l.brand_id, _b.country)
    .join(orm.brand, _b.id == _l.brand_id)
    .where(_l.msisdn.in_(sa.bindparam("numbers", expanding=True)))
)


class SqlLookupQueries:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def review_queue(
        self,
        scope: Scope,
        *,
        channel: Channel | None = None,
        reason: Reason | None = None,
        limit: int,
    ) -> Sequence[ReplacementRequest]:
        stmt = sa.select(ReplacementRequest).where(
            requests_where(scope), _r.state == State.IN_REVIEW
        )
        if channel is not None:
            stmt = stmt.where(_r.channel == channel)
        if reason is not None:
            stmt = stmt.where(_r.reason == reason)
        stmt = stmt.order_by(_r.created_at.asc(), _r.id.asc()).limit(limit)
        return list(self._uow.session.scalars(stmt))

    def cards_in_stock(
        self, brand_id: str | None = None, *, limit: int | None = None
    ) -> Sequence[tuple[str, str]]:
        query = _STOCK if brand_id is None else _STOCK_OF_BRAND
        if limit is not None:
            query = query.limit(limit)
        rows = self._uow.session.execute(query, {"brand": brand_id} if brand_id else {})
        return [(brand, iccid) for brand, iccid in rows]

    def recent_sim_changes(self, line_id: str, *, limit: int) -> Sequence[ChangeSeen]:
        rows = self._uow.session.execute(_SIM_CHANGES, {"line": line_id, "lim": limit})
        return [ChangeSeen(at, old, new) for at, old, new in rows]

    def job_pending_for_line(self, kind: str, line_id: str) -> bool:
        self._uow.write_jobs()
        found = self._uow.session.execute(_JOB_FOR_LINE, {"kind": kind, "line": line_id})
        return found.first() is not None

    def requests_opened(self, actor: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
        count, oldest = self._uow.session.execute(_OPENED, {"actor": actor, "since": since}).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        return int(count), oldest

    def brand_countries(self) -> list[str]:
        return sorted(c for c in self._uow.session.scalars(_COUNTRIES) if c)

    def numbers(self, msisdns: Collection[str]) -> Sequence[NumberSeen]:
        params: dict[str, Any] = {"numbers": sorted(msisdns)}
        return [NumberSeen(*row) for row in self._uow.session.execute(_NUMBERS, params)]
