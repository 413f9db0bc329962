"""Deciding a verified request: the risk check, automatic approval, and human review.

Called inside the caller's unit of work (``assess_and_decide``, ``approve``) or as
its own use case (``review``). Every finding is stored with its reason on the
request and in the audit log, so a reviewer sees why a request was held.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.domain.model import ReplacementRequest, RiskOutcome
from resim.domain.risk import RiskFacts, assess
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, Refused
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.notify import notify_customer
from resim.services.unit_of_work import UnitOfWork


def assess_and_decide(
    ctx: ServiceContext, uow: UnitOfWork, request: ReplacementRequest, now: dt.datetime
) -> None:
    line = repo.get_line(uow, request.line_id)
    subscriber = repo.get_subscriber(uow, request.subscriber_id)
    brand = repo.get_brand(uow, request.brand_id)
    t = orm.sim_change
    last_change = uow.session.scalar(
        sa.select(sa.func.max(t.c.changed_at)).where(
            t.c.line_id == line.id, t.c.old_iccid.is_not(None)
        )
    )
    if last_change is not None and last_change.tzinfo is None:
        last_change = last_change.replace(tzinfo=dt.UTC)
    facts = RiskFacts(
        now=now,
        line_locked=line.sim_change_locked,
        last_replacement_at=last_change,
        email_changed_at=subscriber.email_changed_at,
    )
    result = assess(facts, brand.policy)
    request.risk_outcome = result.outcome
    request.risk_reasons = [f.as_dict() for f in result.findings]
    uow.audit(
        at=now,
        actor="risk-engine",
        action="risk.assessed",
        object_type="request",
        object_id=request.id,
        detail={"outcome": result.outcome.value, "rules": [f.rule for f in result.findings]},
    )
    if result.outcome == RiskOutcome.ALLOW:
        approve(ctx, uow, request, actor="risk-engine", at=now)
    elif result.outcome == RiskOutcome.REVIEW:
        request.move_to(State.IN_REVIEW, at=now)
        notify_customer(
            ctx, uow, kind="held_for_review", request=request, subscriber=subscriber, brand=brand
        )
    else:
        request.move_to(State.REJECTED, at=now)
        request.failure_code = "RISK_DENIED"
        request.failure_reason = "; ".join(f.reason for f in result.findings)
        notify_customer(
            ctx,
            uow,
            kind="replacement_rejected",
            request=request,
            subscriber=subscriber,
            brand=brand,
        )


def approve(
    ctx: ServiceContext,
    uow: UnitOfWork,
    request: ReplacementRequest,
    *,
    actor: str,
    at: dt.datetime,
) -> None:
    """Move to approved and enqueue the eSIM order (caller holds the row lock)."""
    request.move_to(State.APPROVED, at=at)
    uow.audit(
        at=at, actor=actor, action="request.approved", object_type="request", object_id=request.id
    )
    uow.enqueue("esim.provision", at=at, request_id=request.id)
    notify_customer(ctx, uow, kind="replacement_approved", request=request)


def review(
    ctx: ServiceContext,
    request_id: str,
    *,
    reviewer: str,
    approve_it: bool,
    note: str | None = None,
) -> State:
    """A reviewer decides a held request. Nobody decides a request they created."""
    if not reviewer.strip():
        raise InvalidInput("reviewer is required", code="REVIEWER_REQUIRED")
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True)
        if request.state != State.IN_REVIEW:
            raise Conflict("the request is not waiting for review", code="NOT_IN_REVIEW")
        if reviewer == request.actor:
            raise Refused("a reviewer cannot decide a request they created", code="SELF_REVIEW")
        request.reviewed_by = reviewer
        request.review_note = note
        if approve_it:
            approve(ctx, uow, request, actor=reviewer, at=now)
        else:
            request.move_to(State.REJECTED, at=now)
            request.failure_code = "REVIEW_REJECTED"
            request.failure_reason = note or "rejected by a reviewer"
            uow.audit(
                at=now,
                actor=reviewer,
                action="request.rejected",
                object_type="request",
                object_id=request.id,
            )
            notify_customer(ctx, uow, kind="replacement_rejected", request=request)
        uow.commit()
        return request.state
