"""Loss reports inside other use cases' transactions, and the jobs that bar and free the SIM.

The replacement workflow calls these in its own unit of work (the caller holds
the request's row lock and commits):

* :func:`open_for_request`: a lost or stolen request's identity was verified;
* :func:`void_for_rejected`: a request was rejected (risk deny, a reviewer);
* :func:`resolve_by_cutover`: a cut-over retired the old SIM;
* :func:`holds`: whether an open report keeps a SIM barred (then nothing
  else may give it back: a cancel, an expiry, a rejection of another request).

Jobs (outbox, :mod:`resim.services.outbox.jobs`), each idempotent like every
core-network call (``ports.CoreNetwork``):

* ``loss.suspend`` (:func:`suspend`): bar the report's SIM in the core network,
  then in resim;
* ``loss.resume`` (:func:`resume`): a closed (lifted or voided) report gives the
  SIM back, unless another open report holds it by then.
"""

from __future__ import annotations

import datetime as dt

from resim.domain.loss import LossChannel, LossReason, LossReport, LossState
from resim.domain.model import ReplacementRequest, SimState
from resim.services import repo
from resim.services.context import ServiceContext
from resim.services.outbox.external import JobRecord, call_peer, may_have_taken_effect
from resim.services.unit_of_work import UnitOfWork, new_id


def open_report(uow: UnitOfWork, line_id: str, *, lock: bool = False) -> LossReport | None:
    """The line's open loss report, if any."""
    return uow.loss_reports.open_for_line(line_id, lock=lock)


def holds(uow: UnitOfWork, iccid: str | None) -> bool:
    """Whether an open loss report keeps this SIM barred."""
    if iccid is None:
        return False
    return uow.loss_reports.holds(iccid)


def open_for_request(
    uow: UnitOfWork, request: ReplacementRequest, *, actor: str, at: dt.datetime
) -> LossReport | None:
    """A lost/stolen request was verified: its old SIM is blocked through a loss report.

    If the line already has an open report for that SIM (the customer pressed
    "Block my SIM now" first, or an earlier request opened it), the request
    joins it. Otherwise a report is opened (channel ``replacement``, this
    request) and ``loss.suspend`` enqueued, in the caller's transaction.
    """
    if not request.reason.kills_old_sim_at_once or not request.old_iccid:
        return None
    # The line's row lock, as "Block my SIM now" takes it: the two never race to
    # open two reports (the second would hit the UNIQUE open_line_id).
    uow.lines.lock(request.line_id)
    existing = open_report(uow, request.line_id, lock=True)
    if existing is not None and existing.iccid == request.old_iccid:
        if existing.suspended_at is not None:
            request.old_sim_barred(True, at=at, actor=actor)
        uow.audit(
            at=at,
            actor=actor,
            action="loss.joined",
            object_type="loss_report",
            object_id=existing.id,
            detail={"request": request.id},
        )
        return existing
    if existing is not None:
        return existing  # a report for another SIM of the line: it stands as it is
    report = LossReport(
        id=new_id(),
        line_id=request.line_id,
        brand_id=request.brand_id,
        subscriber_id=request.subscriber_id,
        msisdn=request.msisdn,
        iccid=request.old_iccid,
        reason=LossReason(request.reason.value),
        channel=LossChannel.REPLACEMENT,
        opened_by=actor,
        opened_at=at,
        evidence=list(request.verification_evidence),
        request_id=request.id,
    )
    uow.loss_reports.add(report)
    uow.audit(
        at=at,
        actor=actor,
        action="loss.reported",
        object_type="loss_report",
        object_id=report.id,
        detail={
            "line": request.line_id,
            "iccid": request.old_iccid,
            "reason": request.reason.value,
            "channel": LossChannel.REPLACEMENT.value,
            "request": request.id,
            "methods": request.verification_methods,
        },
    )
    uow.enqueue("loss.suspend", at=at, request_id=request.id, payload={"report_id": report.id})
    return report


def void_for_rejected(
    uow: UnitOfWork, request: ReplacementRequest, *, actor: str, at: dt.datetime
) -> bool:
    """A rejected request's own loss report is voided and the SIM given back.

    Only the report this request's verification opened: whoever verified it
    was judged not to be the account holder. A report opened in its own
    right, or by an earlier request, stands. Returns whether one was voided.
    """
    report = open_report(uow, request.line_id, lock=True)
    if (
        report is None
        or report.channel != LossChannel.REPLACEMENT
        or report.request_id != request.id
    ):
        return False
    why = report.close(LossState.VOIDED, by=actor, at=at, request_id=request.id)
    uow.audit(
        at=at,
        actor=actor,
        action="loss.voided",
        object_type="loss_report",
        object_id=report.id,
        detail={"request": request.id, "why": why},
    )
    uow.enqueue("loss.resume", at=at, request_id=request.id, payload={"report_id": report.id})
    return True


def resolve_by_cutover(
    uow: UnitOfWork, request: ReplacementRequest, *, at: dt.datetime
) -> LossReport | None:
    """The cut-over retired the old SIM: the loss report on it is resolved."""
    report = open_report(uow, request.line_id, lock=True)
    if report is None or report.iccid != request.old_iccid:
        return None
    why = report.close(LossState.RESOLVED, by="worker", at=at, request_id=request.id)
    uow.audit(
        at=at,
        actor="worker",
        action="loss.resolved",
        object_type="loss_report",
        object_id=report.id,
        detail={"request": request.id, "why": why, "new_iccid": request.new_iccid},
    )
    return report


def _mark_requests(
    uow: UnitOfWork, report: LossReport, *, suspended: bool, at: dt.datetime
) -> None:
    """Open requests replacing the report's SIM show whether it is barred."""
    for req in uow.requests.open_replacing(line_id=report.line_id, old_iccid=report.iccid):
        req.old_sim_barred(suspended, at=at)


def _report_id(job: JobRecord) -> str:
    value = job.payload.get("report_id")
    assert isinstance(value, str), "loss jobs carry their report's id"
    return value


def suspend(ctx: ServiceContext, job: JobRecord) -> None:
    """Job ``loss.suspend``: bar the SIM of an open report, in the core network then in resim.

    A report closed before its SIM was barred leaves the SIM alone; one closed
    while the core was being called (or before a killed attempt's call was
    recorded) gets a ``loss.resume`` here, so the closing always wins.
    """
    report_id = _report_id(job)
    now = ctx.now()
    with ctx.uow() as uow:
        report = uow.loss_reports.get(report_id)
        if report is None:
            return
        sim = repo.get_sim(uow, report.iccid)
        if sim.state != SimState.ACTIVE:
            # Already barred (another report, a separation) or retired by a cut-over.
            if report.is_open and sim.state == SimState.SUSPENDED:
                report.suspended_at = report.suspended_at or now
                _mark_requests(uow, report, suspended=True, at=now)
                uow.commit()
            return
        imsi, was_open = sim.imsi, report.is_open
    if not was_open and not may_have_taken_effect(ctx, job, "core.suspend"):
        return  # closed before the SIM was barred: it simply stays in service
    call_peer(ctx, job, "core.suspend", lambda _cid: ctx.core.suspend_imsi(imsi=imsi))
    now = ctx.now()
    with ctx.uow() as uow:
        report = uow.loss_reports.get(report_id, lock=True)
        assert report is not None
        sim = repo.get_sim(uow, report.iccid, lock=True)
        if sim.state == SimState.ACTIVE:
            sim.set_state(SimState.SUSPENDED)
        uow.audit(
            at=now,
            actor="worker",
            action="sim.suspended",
            object_type="sim",
            object_id=sim.iccid,
            detail={"loss_report": report.id, "request": job.request_id},
        )
        if report.is_open:
            report.suspended_at = report.suspended_at or now
            _mark_requests(uow, report, suspended=True, at=now)
        else:
            # Lifted or voided while we barred the SIM, and nothing was resumed then.
            uow.enqueue(
                "loss.resume", at=now, request_id=job.request_id, payload={"report_id": report.id}
            )
        uow.commit()


def resume(ctx: ServiceContext, job: JobRecord) -> None:
    """Job ``loss.resume``: a lifted or voided report gives its SIM its service back.

    Left alone when the SIM is not suspended (never barred, or retired), or
    when another open report holds it by then. If one opened while the core
    was being called, the SIM is recorded active (as the core has it) and
    ``loss.suspend`` enqueued for that report, which bars it again.
    """
    report_id = _report_id(job)
    with ctx.uow() as uow:
        report = uow.loss_reports.get(report_id)
        if report is None or report.is_open:
            return
        sim = repo.get_sim(uow, report.iccid)
        if (
            sim.state != SimState.SUSPENDED
            or holds(uow, sim.iccid)
            or _separation_holds(uow, sim.iccid)
        ):
            return
        imsi, iccid = sim.imsi, sim.iccid
    call_peer(ctx, job, "core.resume", lambda _cid: ctx.core.resume_imsi(imsi=imsi))
    now = ctx.now()
    with ctx.uow() as uow:
        sim = repo.get_sim(uow, iccid, lock=True)
        if sim.state != SimState.SUSPENDED:
            uow.commit()
            return
        sim.set_state(SimState.ACTIVE)
        report = uow.loss_reports.get(report_id)
        assert report is not None
        _mark_requests(uow, report, suspended=False, at=now)
        uow.audit(
            at=now,
            actor="worker",
            action="sim.resumed",
            object_type="sim",
            object_id=iccid,
            detail={"loss_report": report_id, "request": job.request_id},
        )
        again = open_report(uow, report.line_id)
        if again is not None and again.iccid == iccid:
            uow.enqueue(
                "loss.suspend",
                at=now,
                request_id=again.request_id,
                payload={"report_id": again.id},
            )
        uow.commit()


def _separation_holds(uow: UnitOfWork, iccid: str) -> bool:
    """A line separation (SEC-12) in progress keeps the old SIM barred for its own reasons."""
    return uow.requests.separation_holds(iccid)
