"""Loading aggregates inside a unit of work, with row locks where a state change follows.

``lock=True`` emits SELECT ... FOR UPDATE on PostgreSQL (the row stays locked
until the transaction ends; callers re-check the state after locking). SQLite
transactions are already exclusive (BEGIN IMMEDIATE), so the clause is a no-op.
"""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.domain.model import (
    BOUND_SIM_STATES,
    Brand,
    Line,
    ReplacementRequest,
    Sim,
    Subscriber,
)
from resim.errors import NotFound
from resim.services.tenancy import UNRESTRICTED, Scope, lines_where, requests_where
from resim.services.unit_of_work import UnitOfWork


def get_request(
    uow: UnitOfWork, request_id: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
) -> ReplacementRequest:
    """The request, or NotFound; also NotFound when ``scope`` may not see it (another
    brand's request, or not the customer session's own), so existence is not revealed."""
    stmt = sa.select(ReplacementRequest).where(
        orm.replacement_request.c.id == request_id, requests_where(scope)
    )
    if lock:
        stmt = stmt.with_for_update()
    found = uow.session.scalars(stmt).one_or_none()
    if found is None:
        raise NotFound("no replacement request with that id", code="REQUEST_NOT_FOUND")
    return found


def find_request_by_new_iccid(
    uow: UnitOfWork, iccid: str, *, lock: bool = False
) -> ReplacementRequest | None:
    """The request that holds the profile now: the newest one naming it."""
    t = orm.replacement_request
    stmt = (
        sa.select(ReplacementRequest)
        .where(t.c.new_iccid == iccid)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(1)
    )
    if lock:
        stmt = stmt.with_for_update()
    return uow.session.scalars(stmt).one_or_none()


def get_line_by_msisdn(
    uow: UnitOfWork, msisdn: str, *, lock: bool = False, scope: Scope = UNRESTRICTED
) -> Line:
    """The line, or NotFound; also NotFound when ``scope`` may not see it."""
    stmt = sa.select(Line).where(orm.line.c.msisdn == msisdn, lines_where(scope))
    if lock:
        stmt = stmt.with_for_update()
    found = uow.session.scalars(stmt).one_or_none()
    if found is None:
        raise NotFound("no line with that phone number", code="LINE_NOT_FOUND")
    return found


def get_line(uow: UnitOfWork, line_id: str) -> Line:
    found = uow.session.get(Line, line_id)
    if found is None:
        raise NotFound("no such line", code="LINE_NOT_FOUND")
    return found


def get_subscriber(uow: UnitOfWork, subscriber_id: str) -> Subscriber:
    found = uow.session.get(Subscriber, subscriber_id)
    if found is None:
        raise NotFound("no such subscriber", code="SUBSCRIBER_NOT_FOUND")
    return found


def get_brand(uow: UnitOfWork, brand_id: str) -> Brand:
    found = uow.session.get(Brand, brand_id)
    if found is None:
        raise NotFound("no such brand", code="BRAND_NOT_FOUND")
    return found


def get_sim(uow: UnitOfWork, iccid: str, *, lock: bool = False) -> Sim:
    found = uow.session.get(Sim, iccid, with_for_update=lock)
    if found is None:
        raise NotFound("no SIM with that ICCID", code="SIM_NOT_FOUND")
    return found


def bound_sim(uow: UnitOfWork, line_id: str) -> Sim | None:
    """The SIM currently bound to the line (active or suspended), if any."""
    return uow.session.scalars(
        sa.select(Sim).where(
            orm.sim.c.line_id == line_id,
            orm.sim.c.state.in_(list(BOUND_SIM_STATES)),
        )
    ).one_or_none()


def open_request_for_line(uow: UnitOfWork, line_id: str) -> ReplacementRequest | None:
    return uow.session.scalars(
        sa.select(ReplacementRequest).where(orm.replacement_request.c.open_line_id == line_id)
    ).one_or_none()
