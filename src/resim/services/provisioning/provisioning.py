"""Job handlers that order and hand over the new eSIM profile (ES2+).

Withdrawing an order (``esim.cancel_order``) is ``services.provisioning.withdraw``.

``esim.provision`` walks: reserve a profile from stock -> downloadOrder(ICCID)
-> confirmOrder(releaseFlag=true, our own MatchingID) -> ready. Progress is
kept on the request (``smdp_step``), so a worker killed at any point resumes
at the step it was in. Ordering by ICCID (never by profileType) and choosing
the MatchingID ourselves make a retried call recognisable: if an earlier
attempt's outcome is unknown and the SM-DP+ now answers "not available" or
"wrong state" (SGP.22 8.2.1/3.3, 3.5; 8.2.6/3.3), the earlier call took
effect and the step is done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from resim.domain.activation import ActivationCode, generate_matching_id
from resim.domain.model import ReplacementRequest, Sim, SimForm, SimState
from resim.domain.workflow import TRANSITIONS, State
from resim.errors import ExternalError
from resim.services import repo
from resim.services.audit import redaction
from resim.services.context import ServiceContext
from resim.services.notifications.notify import notify_customer
from resim.services.outbox.external import JobRecord, call_peer, may_have_taken_effect
from resim.services.provisioning import reconcile
from resim.services.unit_of_work import UnitOfWork

T = TypeVar("T")

_ALREADY_DONE = {("8.2.1", "3.3"), ("8.2.1", "3.5"), ("8.2.6", "3.3")}


def _already_done(exc: ExternalError) -> bool:
    pair = (getattr(exc, "subject_code", None), getattr(exc, "reason_code", None))
    return pair in _ALREADY_DONE


def provision(ctx: ServiceContext, job: JobRecord) -> None:
    assert job.request_id is not None
    if _cooling_off(ctx, job):
        return
    if not _reserve(ctx, job.request_id):
        return
    with ctx.uow() as uow:
        req = repo.get_request(uow, job.request_id)
        iccid, matching_id, step, eid = req.new_iccid, req.matching_id, req.smdp_step, req.eid
    assert iccid is not None and matching_id is not None
    redaction.tell(matching_id)
    if step is None:
        _call_tolerant(
            ctx,
            job,
            "es2.downloadOrder",
            lambda cid: ctx.smdp.download_order(call_id=cid, iccid=iccid, eid=eid),
        )
        if not _advance(ctx, job.request_id, "ordered"):
            return
    smdp_address = ctx.smdp_address
    confirmed = _call_tolerant(
        ctx,
        job,
        "es2.confirmOrder",
        lambda cid: ctx.smdp.confirm_order(
            call_id=cid, iccid=iccid, release_flag=True, matching_id=matching_id or None, eid=eid
        ),
    )
    answered: str | None = None
    if confirmed is not None:
        smdp_address = confirmed.smdp_address or smdp_address
        # The SM-DP+'s answer is the MatchingID it will match (SGP.22 5.3.2); it
        # may be empty (SGP.22 4.1: an EID-bound order), and that is valid.
        answered = confirmed.matching_id
        redaction.tell(answered)
    _mark_ready(ctx, job.request_id, smdp_address, answered)


def _cooling_off(ctx: ServiceContext, job: JobRecord) -> bool:
    with ctx.uow() as uow:
        waiting = cooling_off_in(ctx, uow, job)
        uow.commit()
        return waiting


def cooling_off_in(
    ctx: ServiceContext,
    uow: UnitOfWork,
    job: JobRecord,
    *,
    req: ReplacementRequest | None = None,
) -> bool:
    """SEC-07: an approved request is not ordered before its ``cooling_off_until``.

    Approval schedules the job for that time; a job run early (re-queued by
    hand, or enqueued by a path that forgot the delay) does nothing and makes
    sure one pending job is scheduled for the end of the cooling-off.
    ``req``: the job's request, already locked in this unit of work.
    """
    now = ctx.now()
    if req is None:
        req = repo.get_request(uow, _rid(job), lock=True)
    until = req.cooling_off_until
    if req.state != State.APPROVED or until is None or now >= until:
        return False
    waiting = uow.jobs.exists(
        request_id=req.id, kind="esim.provision", states=("pending",), excluding=job.id
    )
    if not waiting:
        uow.enqueue("esim.provision", at=now, request_id=req.id, run_after=until)
    return True


def _rid(job: JobRecord) -> str:
    assert job.request_id is not None
    return job.request_id


def _call_tolerant(
    ctx: ServiceContext, job: JobRecord, target: str, fn: Callable[[str], T]
) -> T | None:
    try:
        return call_peer(ctx, job, target, fn)
    except ExternalError as exc:
        if not exc.retryable and _already_done(exc) and may_have_taken_effect(ctx, job, target):
            return None
        raise


def _reserve(ctx: ServiceContext, request_id: str) -> bool:
    with ctx.uow() as uow:
        reserved = reserve_in(ctx, uow, request_id)
        uow.commit()
        return reserved


def reserve_in(
    ctx: ServiceContext,
    uow: UnitOfWork,
    request_id: str,
    *,
    req: ReplacementRequest | None = None,
) -> bool:
    """approved -> provisioning and a profile reserved from stock. False: nothing to do.
    ``req``: the request, already locked in this unit of work."""
    now = ctx.now()
    if req is None:
        req = repo.get_request(uow, request_id, lock=True)
    if req.state == State.APPROVED:
        req.start_provisioning(at=now)
    if req.state != State.PROVISIONING:
        # Closed (cancelled, failed) while an earlier run of this job, killed
        # mid-way, held the profile: nobody else will give it back.
        if not req.is_open:
            _release_profile(ctx, uow, req, at=now)
        return False
    if req.new_iccid is None:
        brand = repo.get_brand(uow, req.brand_id)
        sim = _take_from_stock(uow, req.brand_id, brand.policy.profile_type)
        if sim is None:
            _fail(
                ctx,
                uow,
                req,
                code="NO_STOCK",
                at=now,
                reason=f"no eSIM profile of type {brand.policy.profile_type} in stock",
            )
            return False
        sim.set_state(SimState.RESERVED, line_id=req.line_id)
        req.reserve_profile(iccid=sim.iccid, matching_id=generate_matching_id(), at=now)
    return True


def _release_profile(
    ctx: ServiceContext, uow: UnitOfWork, req: ReplacementRequest, *, at: dt.datetime
) -> None:
    """Give back the profile a closed request still holds reserved (caller holds its lock).

    No downloadOrder that may have taken effect: the profile was never ordered
    and goes straight back to stock. Otherwise one ``esim.cancel_order``
    withdraws it, unless one is already enqueued for this request.
    """
    if req.new_iccid is None or req.smdp_step == "confirmed":
        return  # confirmed orders are withdrawn by whoever closed the request
    sim = repo.get_sim(uow, req.new_iccid, lock=True)
    if sim.state != SimState.RESERVED:
        return
    if uow.jobs.exists(request_id=req.id, kind="esim.cancel_order"):
        return
    if req.smdp_step is None and not _order_may_exist(uow, req.id):
        sim.set_state(SimState.IN_STOCK)
        sim.line_id = None
        uow.audit(
            at=at,
            actor="worker",
            action="esim.released",
            object_type="sim",
            object_id=sim.iccid,
            detail={"request": req.id},
        )
        return
    if sim.form == SimForm.PHYSICAL:
        return  # a card booked with the courier may be in the post: it stays reserved
    uow.enqueue("esim.cancel_order", at=at, request_id=req.id, payload={"iccid": req.new_iccid})


def _order_may_exist(uow: UnitOfWork, request_id: str) -> bool:
    """A downloadOrder (or, for a card, a courier booking) for this request
    succeeded, or its outcome is unknown: the SIM may be out of the stock room."""
    return uow.calls.may_have_taken_effect(
        request_id=request_id, targets=("es2.downloadOrder", "courier.dispatch")
    )


def _take_from_stock(uow: UnitOfWork, brand_id: str, profile_type: str) -> Sim | None:
    """The first free profile.

    A profile withdrawn from a closed request is back in stock but still named
    by that request's ``new_iccid`` (UNIQUE), and a late job of that request may
    still act on it; it is passed over, never reissued (it stays visible in
    stock for an operator to return to the SM-DP+ pool by hand).
    """
    return uow.stock.free_profile(brand_id=brand_id, profile_type=profile_type)


def _advance(ctx: ServiceContext, request_id: str, step: str) -> bool:
    with ctx.uow() as uow:
        still = advance_in(ctx, uow, request_id, step)
        uow.commit()
        return still


def advance_in(ctx: ServiceContext, uow: UnitOfWork, request_id: str, step: str) -> bool:
    """Record SM-DP+ progress; if the request was closed meanwhile, withdraw.

    A request already past provisioning (ready, completed) was finished by
    another run of this job (one whose lease ran out): leave it alone.
    """
    now = ctx.now()
    req = repo.get_request(uow, request_id, lock=True)
    still = req.state == State.PROVISIONING
    if still or not req.is_open:
        req.record_smdp_step(step, at=now)
    if not req.is_open:
        _release_profile(ctx, uow, req, at=now)
    return still


def _mark_ready(
    ctx: ServiceContext, request_id: str, smdp_address: str, matching_id: str | None = None
) -> None:
    with ctx.uow() as uow:
        mark_ready_in(ctx, uow, request_id, smdp_address, matching_id)
        uow.commit()


def mark_ready_in(
    ctx: ServiceContext,
    uow: UnitOfWork,
    request_id: str,
    smdp_address: str,
    matching_id: str | None = None,
) -> None:
    """Ready: the activation code, sealed, from the address and the MatchingID
    (``matching_id``: the SM-DP+'s answer, when it differs from ours)."""
    now = ctx.now()
    req = repo.get_request(uow, request_id, lock=True)
    if req.state != State.PROVISIONING:
        # Closed while we confirmed: withdraw. Ready or later: another run of
        # this job got there first, and the order is the request's own.
        if not req.is_open and req.smdp_step != "confirmed":
            _release_profile(ctx, uow, req, at=now)
            req.record_smdp_step("confirmed", at=now)
        return
    ours = req.matching_id if matching_id is None else matching_id
    assert ours is not None
    code = ActivationCode.from_peer(smdp_address=smdp_address, matching_id=ours)
    brand = repo.get_brand(uow, req.brand_id)
    ttl = dt.timedelta(hours=brand.policy.activation_code_ttl_hours)
    # The request records the confirmed step, the SM-DP+'s MatchingID when it
    # differs, and its expire_activation job (MarkedReady).
    req.mark_ready(
        activation_code_enc=ctx.secrets.encrypt(code.text),
        expires_at=now + ttl,
        smdp_matching_id=matching_id,
        at=now,
    )
    assert req.activation_expires_at is not None
    notify_customer(
        ctx,
        uow,
        kind="esim_ready",
        request=req,
        brand=brand,
        context={"expires_at": req.activation_expires_at},
    )
    # The install callback may never come (issue 13.6): ask later ourselves.
    reconcile.schedule(ctx, uow, req, at=now)


def _fail(
    ctx: ServiceContext,
    uow: UnitOfWork,
    req: ReplacementRequest,
    *,
    code: str,
    reason: str,
    at: dt.datetime,
) -> None:
    req.fail(code=code, reason=reason, at=at)
    notify_customer(ctx, uow, kind="replacement_failed", request=req)


def fail_request(ctx: ServiceContext, request_id: str, *, code: str, reason: str) -> None:
    """A job for this request failed for good: make it visible as failed."""
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True)
        if (req.state, State.FAILED) not in TRANSITIONS:
            return
        # A confirmed order is withdrawn by the request's Failed event (esim.cancel_order).
        _fail(ctx, uow, req, code=code, reason=reason, at=now)
        if req.smdp_step != "confirmed":
            _release_profile(ctx, uow, req, at=now)  # reserved, maybe ordered: give it back
        uow.commit()
