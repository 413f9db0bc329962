"""Deciding a verified request: the risk check, automatic approval, and human review.

Called inside the caller's unit of work (``assess_and_decide``) or as
its own use case (``review``). Every finding is stored with its reason on the
request and in the audit log, so a reviewer sees why a request was held.
"""

from __future__ import annotations

import datetime as dt

from resim.domain.agent_channel import confirmation_finding, involved_staff
from resim.domain.model import ReplacementRequest, RiskOutcome
from resim.domain.policy import BrandPolicy
from resim.domain.risk import assess, decide
from resim.domain.workflow import State
from resim.errors import Conflict, InvalidInput, Refused
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import holds, void_for_rejected
from resim.services.notifications.notify import notify_customer
from resim.services.risk import risk_facts
from resim.services.unit_of_work import UnitOfWork


def assess_and_decide(
    ctx: ServiceContext, uow: UnitOfWork, request: ReplacementRequest, now: dt.datetime
) -> None:
    """Run the risk rules on a verified request and act on the outcome.

    The caller holds the request's row lock and commits. Outcomes:

    * allow: approved at once (cooling-off, SEC-07, delays the order: :func:`cooling_off`);
    * step_up: while ``request.step_up_methods`` is None, set it from the policy,
      audit ``risk.step_up_required``, enqueue ``request.expire_step_up`` (due
      at :func:`step_up_deadline`) and leave the request VERIFIED; once one of
      those methods is in ``request.verification_methods`` (team VERIFY's
      ``submit_step_up`` appends it and calls this again) step_up findings no
      longer hold it. A customer who already proved a step-up method is not asked twice;
    * review: held for reviewers; findings of ``policy.four_eyes_rules`` and a
      lock override make it need two distinct approvers (and always a review);
      a staff-made request without the confirmation ``policy.agent_confirmation``
      asks for (``domain.agent_channel``) is held too, with that reason;
    * deny: rejected, with every reason.
    """
    line = repo.get_line(uow, request.line_id)
    subscriber = repo.get_subscriber(uow, request.subscriber_id)
    brand = repo.get_brand(uow, request.brand_id)
    policy = brand.policy
    facts = risk_facts.gather(
        uow, request=request, line=line, subscriber=subscriber, policy=policy, now=now
    )
    result = assess(facts, policy)
    # Issue 13: a staff-made request needs the customer's own factor or a second
    # staff member. Held for review like a finding, without changing the rules'
    # outcome (it is no fraud signal, and reports do not count it as one).
    findings = list(result.findings)
    unconfirmed = confirmation_finding(request, policy)
    if unconfirmed is not None:
        findings.append(unconfirmed)
    four_eyes = request.lock_override or any(
        f.rule in policy.four_eyes_rules for f in result.findings
    )
    stepped_up = any(m in policy.step_up_methods for m in request.verification_methods)
    outcome = decide(findings, stepped_up=stepped_up, four_eyes=four_eyes)
    decided = request.assess(
        outcome=result.outcome,
        decision=outcome,
        findings=[f.as_dict() for f in findings],
        four_eyes=four_eyes,
        step_up_methods=list(policy.step_up_methods),
        step_up_rules=[f.rule for f in result.findings if f.outcome == RiskOutcome.STEP_UP],
        step_up_deadline=step_up_deadline(request, policy, now),
        deny_reason="; ".join(f.reason for f in result.findings if f.outcome == RiskOutcome.DENY),
        cooling_off=cooling_off(policy, request),
        at=now,
    )
    if decided == RiskOutcome.ALLOW:
        notify_customer(ctx, uow, kind="replacement_approved", request=request)
    elif decided == RiskOutcome.REVIEW:
        notify_customer(
            ctx, uow, kind="held_for_review", request=request, subscriber=subscriber, brand=brand
        )
    elif decided == RiskOutcome.DENY:
        give_back_old_sim(uow, request, at=now)
        notify_customer(
            ctx,
            uow,
            kind="replacement_rejected",
            request=request,
            subscriber=subscriber,
            brand=brand,
        )


def cooling_off(policy: BrandPolicy, request: ReplacementRequest) -> dt.timedelta:
    """SEC-07: how long an approved request waits before the order (by its reason)."""
    return dt.timedelta(hours=policy.cooling_off_hours.get(request.reason.value, 0))


def step_up_deadline(
    request: ReplacementRequest, policy: BrandPolicy, now: dt.datetime
) -> dt.datetime:
    """When a request waiting for a step-up expires: ``step_up_window_hours`` after it
    was verified (the step-up is asked for in the verifying transaction)."""
    return (request.verified_at or now) + dt.timedelta(hours=policy.step_up_window_hours)


def give_back_old_sim(uow: UnitOfWork, request: ReplacementRequest, *, at: dt.datetime) -> None:
    """A rejected lost/stolen request must not leave the real customer's SIM barred.

    Whoever was rejected may have been a fraudster who passed verification; the
    account holder keeps service. If the suspension job has not barred the SIM
    yet, it sees the rejection and leaves the SIM alone (``loss_hooks.suspend``).

    Only the loss report this request's own verification opened is voided; one
    the customer opened in its own right (or an earlier request did) stands.
    """
    if void_for_rejected(uow, request, actor="system", at=at):
        return
    if request.old_sim_suspended and not holds(uow, request.old_iccid):
        uow.enqueue("core.resume_old", at=at, request_id=request.id)


def brand_policy(uow: UnitOfWork, request: ReplacementRequest) -> BrandPolicy:
    return repo.get_brand(uow, request.brand_id).policy


def reviewer_identity(reviewer: str) -> str:
    """Who decides, as an actor: "staff:<id>", "client:<id>"; a bare id names a staff member."""
    name = reviewer.strip()
    return name if ":" in name else f"staff:{name}"


def review(
    ctx: ServiceContext,
    request_id: str,
    *,
    reviewer: str,
    approve_it: bool,
    note: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> State:
    """A reviewer decides a held request (SEC-08 four eyes).

    A request out of the reviewer's ``scope`` (another brand's) is NotFound.

    ``reviewer`` is the deciding principal's actor ("staff:<id>"; a bare id
    means a staff id). Nobody decides a request they created or recorded
    verification evidence for (SELF_REVIEW), and
    nobody approves twice (DUPLICATE_APPROVAL). Each approval is recorded in
    ``request.approvals``; the request is approved once
    ``request.required_approvals`` distinct people approved. One rejection rejects.
    """
    if not reviewer.strip():
        raise InvalidInput("reviewer is required", code="REVIEWER_REQUIRED")
    who = reviewer_identity(reviewer)
    now = ctx.now()
    with ctx.uow() as uow:
        request = repo.get_request(uow, request_id, lock=True, scope=scope)
        if request.state != State.IN_REVIEW:  # before SELF_REVIEW, as always
            raise Conflict("the request is not waiting for review", code="NOT_IN_REVIEW")
        if who == reviewer_identity(request.actor) or who in involved_staff(request):
            raise Refused(
                "a reviewer cannot decide a request they created or verified", code="SELF_REVIEW"
            )
        state = request.review(
            by=who,
            approve_it=approve_it,
            note=note,
            cooling_off=cooling_off(brand_policy(uow, request), request),
            at=now,
        )
        if state == State.APPROVED:
            notify_customer(ctx, uow, kind="replacement_approved", request=request)
        elif state == State.REJECTED:
            give_back_old_sim(uow, request, at=now)
            notify_customer(ctx, uow, kind="replacement_rejected", request=request)
        uow.commit()
        return request.state
