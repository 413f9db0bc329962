"""The repositories of :mod:`resim.services.repositories` on a SQLAlchemy session.

One instance per unit of work, sharing its session (so its identity map: the
same row loaded twice is the same object). Statements that take no variable
part are built once, here at import, and run with bound parameters; building a
``select`` costs more CPU than running a cached one.

``lock=True`` adds ``FOR UPDATE`` (PostgreSQL; SQLite ignores it, its
transactions being exclusive already, so there a locked get by id is an
identity-map get). Stock is taken with ``SKIP LOCKED`` so
that two workers provisioning at once take two different profiles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resim.adapters.db import orm
from resim.adapters.db.autoflush import get_unflushed, written_once
from resim.adapters.db.scoping import lines_where, requests_where, sim_changes_where
from resim.adapters.db.statements import Statements
from resim.domain.loss import LossReport
from resim.domain.model import (
    Brand,
    Line,
    ReplacementRequest,
    Sim,
    SimChange,
    SimState,
    Subscriber,
)
from resim.domain.policy import BrandPolicy
from resim.domain.security import IdentityCheck
from resim.domain.workflow import State
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.repositories import SealedActivation

_r = orm.replacement_request.c
_l = orm.line.c
_s = orm.sim.c
_sc = orm.sim_change.c
_lr = orm.loss_report.c
_ic = orm.identity_check.c
_j = orm.job.c
_x = orm.external_call.c


# ------------------------------------------------------------------ requests


class SqlRequests:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def get(
        self, request_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> ReplacementRequest | None:
        if scope.unrestricted:
            if not (lock and self._q.row_locks):
                # The identity map answers without a query when the row is loaded.
                return get_unflushed(self._s, ReplacementRequest, request_id)
            return self._s.scalars(self._q.REQUEST_BY_ID_LOCKED, {"id": request_id}).one_or_none()
        stmt, params = self._q.request_in_scope(request_id, scope, lock=lock)
        return self._s.scalars(stmt, params).one_or_none()

    def by_new_iccid(self, iccid: str, *, lock: bool = False) -> ReplacementRequest | None:
        stmt = self._q.REQUEST_BY_NEW_ICCID_LOCKED if lock else self._q.REQUEST_BY_NEW_ICCID
        return self._s.scalars(stmt, {"iccid": iccid}).one_or_none()

    def holder_of(self, iccid: str, *, lock: bool = False) -> tuple[str, str] | None:
        stmt = self._q.HOLDER_LOCKED if lock else self._q.HOLDER
        found = self._s.execute(stmt, {"iccid": iccid}).first()
        return None if found is None else (found[0], found[1])

    def sealed_activation(
        self, request_id: str, *, scope: Scope = UNRESTRICTED
    ) -> SealedActivation | None:
        stmt, params = self._q.request_in_scope(request_id, scope, sealed=True)
        found = self._s.connection().execute(stmt, params).first()
        return None if found is None else SealedActivation(*found)

    def open_for_line(self, line_id: str, *, lock: bool = False) -> ReplacementRequest | None:
        stmt = self._q.OPEN_REQUEST_LOCKED if lock else self._q.OPEN_REQUEST
        return self._s.scalars(stmt, {"line": line_id}).one_or_none()

    def open_replacing(self, *, line_id: str, old_iccid: str) -> Sequence[ReplacementRequest]:
        return self._s.scalars(self._q.OPEN_REPLACING, {"line": line_id, "iccid": old_iccid}).all()

    def separation_holds(self, old_iccid: str) -> bool:
        return bool(self._s.scalar(self._q.SEPARATION_HOLDS, {"iccid": old_iccid}))

    def id_by_not_me_token(self, token_hash: str) -> str | None:
        return self._s.scalar(self._q.ID_BY_NOT_ME, {"hash": token_hash})

    def completed_since(self, *, line_id: str, since: dt.datetime) -> int:
        return self._s.scalar(self._q.COMPLETED_SINCE, {"line": line_id, "since": since}) or 0

    def opened_by(
        self, *, actor: str, since: dt.datetime, excluding: str, refused_only: bool = False
    ) -> int:
        stmt = self._q.REFUSED_BY if refused_only else self._q.OPENED_BY
        params = {"actor": actor, "since": since, "excluding": excluding}
        return self._s.scalar(stmt, params) or 0

    def listed(
        self,
        *,
        scope: Scope = UNRESTRICTED,
        state: State | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Sequence[ReplacementRequest]:
        stmt = sa.select(ReplacementRequest).where(requests_where(scope))
        if state is not None:
            stmt = stmt.where(_r.state == state)
        # oldest first for the review queue; newest first otherwise
        order = _r.created_at.asc() if state == State.IN_REVIEW else _r.created_at.desc()
        return self._s.scalars(stmt.order_by(order).limit(limit).offset(offset)).all()

    def add(self, request: ReplacementRequest) -> None:
        self._s.add(request)


# ------------------------------------------------------------------ lines


class SqlLines:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def get(self, line_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED) -> Line | None:
        if scope.unrestricted:
            if not (lock and self._q.row_locks):
                return get_unflushed(self._s, Line, line_id)
            return self._s.scalars(self._q.LINE_BY_ID_LOCKED, {"id": line_id}).one_or_none()
        stmt = sa.select(Line).where(_l.id == line_id, lines_where(scope))
        if lock:
            stmt = stmt.with_for_update()
        return self._s.scalars(stmt).one_or_none()

    def by_msisdn(
        self, msisdn: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
    ) -> Line | None:
        if scope.unrestricted:
            stmt = self._q.LINE_BY_MSISDN_LOCKED if lock else self._q.LINE_BY_MSISDN
        else:
            stmt = self._q.LINE_BY_MSISDN.where(lines_where(scope))
            if lock:
                stmt = stmt.with_for_update()
        return self._s.scalars(stmt, {"msisdn": msisdn}).one_or_none()

    def lock(self, line_id: str) -> None:
        self._s.execute(self._q.LOCK_LINE, {"id": line_id})

    def add(self, line: Line) -> None:
        self._s.add(line)


# ------------------------------------------------------------------ SIMs and stock


class SqlSims:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def get(self, iccid: str, *, lock: bool = False) -> Sim | None:
        if lock and self._q.row_locks:
            return self._s.get(Sim, iccid, with_for_update=True)
        return get_unflushed(self._s, Sim, iccid)

    def bound_to(self, line_id: str) -> Sim | None:
        return self._s.scalars(self._q.BOUND_SIM, {"line": line_id}).one_or_none()

    def state_for_request(self, iccid: str, request_id: str | None) -> tuple[SimState | None, bool]:
        row = self._s.execute(self._q.SIM_STATE_FOR_REQUEST, {"iccid": iccid, "rid": request_id})
        found = row.first()
        if found is None:
            return None, False
        return SimState(found[0]), bool(found[1])

    def add(self, sim: Sim) -> None:
        self._s.add(sim)


class SqlStock:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def free_profile(self, *, brand_id: str, profile_type: str) -> Sim | None:
        params = {"brand": brand_id, "profile_type": profile_type}
        return self._s.scalars(self._q.FREE_PROFILE, params).first()

    def free_card(self, *, brand_id: str) -> Sim | None:
        iccid = self._s.scalar(self._q.FREE_CARD, {"brand": brand_id})
        return None if iccid is None else self._s.get(Sim, iccid, with_for_update=True)


# ------------------------------------------------------------------ subscribers, brands


class SqlSubscribers:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def get(self, subscriber_id: str, *, lock: bool = False) -> Subscriber | None:
        if lock and self._q.row_locks:
            return self._s.get(Subscriber, subscriber_id, with_for_update=True)
        return get_unflushed(self._s, Subscriber, subscriber_id)

    def add(self, subscriber: Subscriber) -> None:
        self._s.add(subscriber)


class SqlBrands:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def get(self, brand_id: str) -> Brand | None:
        return get_unflushed(self._s, Brand, brand_id)

    def policy(self, brand_id: str) -> BrandPolicy:
        brand = get_unflushed(self._s, Brand, brand_id)
        if brand is None:
            raise KeyError(brand_id)
        return brand.policy

    def add(self, brand: Brand) -> None:
        self._s.add(brand)


# ------------------------------------------------------------------ SIM changes


class SqlSimChanges:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def for_request(self, request_id: str) -> SimChange | None:
        return self._s.scalars(self._q.CHANGE_FOR_REQUEST, {"request": request_id}).first()

    def last_replacement_at(self, line_id: str) -> dt.datetime | None:
        found: dt.datetime | None = written_once(self._s, SimChange).scalar(
            self._q.LAST_REPLACEMENT, {"line": line_id}
        )
        return found

    def listed(
        self, *, scope: Scope = UNRESTRICTED, msisdn: str | None = None, limit: int = 50
    ) -> Sequence[SimChange]:
        stmt = sa.select(SimChange).where(sim_changes_where(scope))
        if msisdn:
            stmt = stmt.where(_sc.msisdn == msisdn)
        return self._s.scalars(stmt.order_by(_sc.changed_at.desc()).limit(limit)).all()

    def add(self, change: SimChange) -> None:
        self._s.add(change)


# ------------------------------------------------------------------ loss reports


class SqlLossReports:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def get(self, report_id: str, *, lock: bool = False) -> LossReport | None:
        return self._s.get(LossReport, report_id, with_for_update=lock and self._q.row_locks)

    def open_for_line(self, line_id: str, *, lock: bool = False) -> LossReport | None:
        stmt = self._q.OPEN_REPORT_LOCKED if lock else self._q.OPEN_REPORT
        return self._s.scalars(stmt, {"line": line_id}).one_or_none()

    def newest_for_line(self, line_id: str) -> LossReport | None:
        return self._s.scalars(self._q.NEWEST_REPORT, {"line": line_id}).first()

    def holds(self, iccid: str) -> bool:
        return bool(self._s.scalar(self._q.REPORT_HOLDS, {"iccid": iccid}))

    def add(self, report: LossReport) -> None:
        self._s.add(report)


# ------------------------------------------------------------------ identity checks


class SqlIdentityChecks:
    def __init__(self, session: Session, q: Statements) -> None:
        self._s = session
        self._q = q

    def newest_valid(
        self, *, staff_id: str, line_id: str, at: dt.datetime, method: str | None = None
    ) -> IdentityCheck | None:
        params: dict[str, Any] = {"staff": staff_id, "line": line_id, "at": at}
        if method is None:
            return self._s.scalars(self._q.VALID_CHECK, params).first()
        return self._s.scalars(self._q.VALID_CHECK_OF_METHOD, {**params, "method": method}).first()

    def add(self, check: IdentityCheck) -> None:
        self._s.add(check)
