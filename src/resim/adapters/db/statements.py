"""The repositories' statements, built once per unit-of-work factory.

Building a ``select`` costs more CPU than running a cached one, so every
statement without a variable part is built here, once, and run with bound
parameters. ``row_locks`` adds ``FOR UPDATE`` / ``SKIP LOCKED`` where the
database has them (PostgreSQL; SQLite's write transactions are exclusive).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.scoping import requests_params, requests_shape, requests_where
from resim.domain.loss import LossReport, LossState
from resim.domain.model import (
    BOUND_SIM_STATES,
    Line,
    ReplacementRequest,
    RequestKind,
    Sim,
    SimChange,
    SimForm,
)
from resim.domain.security import IdentityCheck
from resim.domain.workflow import State
from resim.services.access.tenancy import Scope

_r = orm.replacement_request.c
_l = orm.line.c
_s = orm.sim.c
_sc = orm.sim_change.c
_lr = orm.loss_report.c
_ic = orm.identity_check.c
_j = orm.job.c
_x = orm.external_call.c


def _count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(table).where(*where)


class Statements:
    """Every statement the repositories run, built once per process.

    Built by :func:`resim.adapters.db.unit_of_work.sql_uow_factory`, after the
    mappers are started (a ``select`` of a domain class needs its mapping).
    """

    def __init__(self, *, row_locks: bool = True) -> None:
        # False on SQLite, whose transactions are exclusive already: ``lock=True``
        # then changes nothing, and a get by id is answered from the identity
        # map when the object is loaded (a FOR UPDATE get always queries).
        self.row_locks = row_locks
        self.REQUEST_BY_ID = sa.select(ReplacementRequest).where(_r.id == sa.bindparam("id"))
        self.REQUEST_BY_ID_LOCKED = self.REQUEST_BY_ID.with_for_update()
        self.SEALED_ACTIVATION = sa.select(
            _r.id, _r.state, _r.activation_code_enc, _r.activation_expires_at
        ).where(_r.id == sa.bindparam("id"))
        self._request_in_scope: dict[tuple[bool, bool, bool, bool, bool], sa.Select[Any]] = {}
        self.REQUEST_BY_NEW_ICCID = (
            sa.select(ReplacementRequest)
            .where(_r.new_iccid == sa.bindparam("iccid"))
            .order_by(_r.created_at.desc(), _r.id.desc())
            .limit(1)
        )
        self.REQUEST_BY_NEW_ICCID_LOCKED = self.REQUEST_BY_NEW_ICCID.with_for_update()
        # Its id and brand only (an ES2+ progress point that changes nothing but the audit log)
        self.HOLDER = (
            sa.select(_r.id, _r.brand_id)
            .where(_r.new_iccid == sa.bindparam("iccid"))
            .order_by(_r.created_at.desc(), _r.id.desc())
            .limit(1)
        )
        self.HOLDER_LOCKED = self.HOLDER.with_for_update()
        self.OPEN_REQUEST = sa.select(ReplacementRequest).where(
            _r.open_line_id == sa.bindparam("line")
        )
        self.OPEN_REQUEST_LOCKED = self.OPEN_REQUEST.with_for_update()
        self.OPEN_REPLACING = sa.select(ReplacementRequest).where(
            _r.open_line_id == sa.bindparam("line"), _r.old_iccid == sa.bindparam("iccid")
        )
        self.SEPARATION_HOLDS = _count(
            orm.replacement_request,
            _r.old_iccid == sa.bindparam("iccid"),
            _r.open_line_id.is_not(None),
            _r.old_sim_suspended.is_(True),
            _r.kind == RequestKind.LINE_SEPARATION.value,
        )
        self.ID_BY_NOT_ME = sa.select(_r.id).where(_r.not_me_token_hash == sa.bindparam("hash"))
        self.COMPLETED_SINCE = _count(
            orm.replacement_request,
            _r.line_id == sa.bindparam("line"),
            _r.state == State.COMPLETED,
            _r.completed_at >= sa.bindparam("since"),
        )
        self.OPENED_BY = _count(
            orm.replacement_request,
            _r.actor == sa.bindparam("actor"),
            _r.created_at >= sa.bindparam("since"),
            _r.id != sa.bindparam("excluding"),
        )
        self.REFUSED_BY = self.OPENED_BY.where(
            sa.or_(_r.state == State.REJECTED, _r.fraud_reported_at.is_not(None))
        )
        self.LINE_BY_ID_LOCKED = (
            sa.select(Line).where(_l.id == sa.bindparam("id")).with_for_update()
        )
        self.LINE_BY_MSISDN = sa.select(Line).where(_l.msisdn == sa.bindparam("msisdn"))
        self.LINE_BY_MSISDN_LOCKED = self.LINE_BY_MSISDN.with_for_update()
        self.LOCK_LINE = sa.select(_l.id).where(_l.id == sa.bindparam("id")).with_for_update()
        self.BOUND_SIM = sa.select(Sim).where(
            _s.line_id == sa.bindparam("line"), _s.state.in_(list(BOUND_SIM_STATES))
        )
        self.SIM_STATE_FOR_REQUEST = (
            sa.select(_s.state, _r.old_sim_suspended)
            .select_from(orm.sim.outerjoin(orm.replacement_request, _r.id == sa.bindparam("rid")))
            .where(_s.iccid == sa.bindparam("iccid"))
        )
        self.FREE_PROFILE = (
            sa.select(Sim)
            .where(
                _s.brand_id == sa.bindparam("brand"),
                _s.form == SimForm.ESIM,
                orm.SIM_IN_STOCK,
                _s.profile_type == sa.bindparam("profile_type"),
                ~sa.exists().where(_r.new_iccid == _s.iccid),
            )
            .order_by(_s.iccid)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        self.FREE_CARD = (
            sa.select(_s.iccid)
            .where(
                _s.brand_id == sa.bindparam("brand"),
                _s.form == SimForm.PHYSICAL.value,
                orm.SIM_IN_STOCK,
            )
            .order_by(_s.iccid)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        self.CHANGE_FOR_REQUEST = sa.select(SimChange).where(
            _sc.request_id == sa.bindparam("request")
        )
        self.LAST_REPLACEMENT = sa.select(sa.func.max(_sc.changed_at)).where(
            _sc.line_id == sa.bindparam("line"), _sc.old_iccid.is_not(None)
        )
        self.OPEN_REPORT = sa.select(LossReport).where(_lr.open_line_id == sa.bindparam("line"))
        self.OPEN_REPORT_LOCKED = self.OPEN_REPORT.with_for_update()
        self.NEWEST_REPORT = (
            sa.select(LossReport)
            .where(_lr.line_id == sa.bindparam("line"))
            .order_by(_lr.opened_at.desc(), _lr.id.desc())
            .limit(1)
        )
        self.REPORT_HOLDS = _count(
            orm.loss_report, _lr.iccid == sa.bindparam("iccid"), _lr.state == LossState.OPEN.value
        )
        self.VALID_CHECK = (
            sa.select(IdentityCheck)
            .where(
                _ic.staff_id == sa.bindparam("staff"),
                _ic.line_id == sa.bindparam("line"),
                _ic.expires_at > sa.bindparam("at"),
            )
            .order_by(_ic.verified_at.desc())
            .limit(1)
        )
        self.VALID_CHECK_OF_METHOD = self.VALID_CHECK.where(_ic.method == sa.bindparam("method"))
        self.INSERT_JOB = sa.insert(orm.job)

    def request_in_scope(
        self, request_id: str, scope: Scope, *, lock: bool = False, sealed: bool = False
    ) -> tuple[sa.Select[Any], dict[str, Any]]:
        """The request (``sealed``: its :data:`SEALED_ACTIVATION` columns) by id if
        ``scope`` may see it (``scoping.requests_where`` with bound parameters): one
        statement per shape of scope, built on first use, so a brand's or customer's
        read does not build a select and its cache key."""
        shape = (*requests_shape(scope), lock, sealed)
        stmt = self._request_in_scope.get(shape)
        if stmt is None:
            base: sa.Select[Any] = self.SEALED_ACTIVATION if sealed else self.REQUEST_BY_ID
            stmt = base.where(requests_where(scope, bound=True))
            if lock:
                stmt = stmt.with_for_update()
            self._request_in_scope[shape] = stmt
        return stmt, {"id": request_id, **requests_params(scope)}
