"""The core-network side: suspend the old SIM, and cut over when the eSIM is installed.

Core-network operations are idempotent (ports.CoreNetwork), so a handler that
dies after the call and before its commit simply calls again on the retry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from resim.domain.model import ReplacementRequest, SimChange, SimState
from resim.domain.policy import BrandPolicy
from resim.domain.workflow import State
from resim.errors import NotFound
from resim.services import repo
from resim.services.camara.subscription_events import enqueue_swap_events
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import holds, resolve_by_cutover
from resim.services.notifications.notify import notify_customer
from resim.services.outbox.external import JobRecord, call_peer, may_have_taken_effect
from resim.services.ports import CoreNetwork, DownloadProgress
from resim.services.risk.risk_facts import remember_origin
from resim.services.unit_of_work import UnitOfWork, new_id

INSTALLED = 4  # SGP.22 notificationPointId: installed on the eUICC (or failed)
DOWNLOADED = 3


# A request that ends in one of these states gives a barred old SIM back.
GIVES_BACK_OLD_SIM = frozenset({State.CANCELLED, State.REJECTED})


def suspend_old(ctx: ServiceContext, job: JobRecord) -> None:
    """A line separation (SEC-12) bars the old SIM in the abuser's hands; so did lost or
    stolen requests before loss reports (issue 12: ``loss_hooks.suspend`` now), and a
    job queued then still runs here.

    A cancel resumes the old SIM only if it sees ``old_sim_suspended``. So a
    request cancelled before this job bars anything is left alone, and one
    cancelled while the core was being called (or before a killed attempt's
    call was recorded) gets its ``core.resume_old`` enqueued here.
    """
    assert job.request_id is not None
    with ctx.uow(read_only=True) as uow:
        plan = suspend_plan(uow, job)
    if plan is None:
        return
    imsi, cancelled = plan
    if cancelled and not may_have_taken_effect(ctx, job, "core.suspend"):
        return  # cancelled before the old SIM was barred: it simply stays in service
    call_peer(ctx, job, "core.suspend", lambda _cid: ctx.core.suspend_imsi(imsi=imsi))
    with ctx.uow() as uow:
        record_suspended_in(ctx, uow, job)
        uow.commit()


def suspend_plan(uow: UnitOfWork, job: JobRecord) -> tuple[str, bool] | None:
    """(the old SIM's IMSI, whether the request was cancelled or rejected), or
    None when there is nothing to bar (no old SIM, or it is not active)."""
    assert job.request_id is not None
    req = repo.get_request(uow, job.request_id)
    if req.old_iccid is None:
        return None
    old = repo.get_sim(uow, req.old_iccid)
    if old.state != SimState.ACTIVE:
        return None  # already suspended, or retired by a cut-over
    # cancelled or rejected: the old SIM goes back into service (review.give_back_old_sim)
    return old.imsi, req.state in GIVES_BACK_OLD_SIM


def record_suspended_in(ctx: ServiceContext, uow: UnitOfWork, job: JobRecord) -> None:
    """The core network barred the old SIM: record it (caller commits)."""
    assert job.request_id is not None
    now = ctx.now()
    req = repo.get_request(uow, job.request_id, lock=True)
    old = repo.get_sim(uow, _iccid(req.old_iccid), lock=True)
    if old.state == SimState.ACTIVE:
        old.set_state(SimState.SUSPENDED)
    req.old_sim_barred(True, at=now)
    uow.audit(
        at=now,
        actor="worker",
        action="sim.suspended",
        object_type="sim",
        object_id=old.iccid,
        detail={"request": req.id},
    )
    if req.state in GIVES_BACK_OLD_SIM:
        # The cancel or rejection committed while we barred the SIM and saw
        # nothing to resume.
        uow.enqueue("core.resume_old", at=now, request_id=req.id)


def _iccid(iccid: str | None) -> str:
    assert iccid is not None
    return iccid


def resume_old(ctx: ServiceContext, job: JobRecord) -> None:
    """A cancelled or rejected request gives back a SIM it barred on its own (a line
    separation). Never a SIM an open loss report holds (``domain.loss``).

    If the line has a newer open request by then, that request takes over the
    suspension (``old_sim_suspended``): its own cancel resumes the SIM, its
    completion retires it.
    """
    assert job.request_id is not None
    with ctx.uow() as uow:
        req = repo.get_request(uow, job.request_id)
        if req.old_iccid is None:
            return
        old = repo.get_sim(uow, req.old_iccid)
        if old.state != SimState.SUSPENDED or req.state == State.COMPLETED:
            return
        if holds(uow, old.iccid):
            return  # a loss report keeps it barred (domain.loss)
        # Locked: a cancel of the newer request either commits first (then it is
        # not open here, and we resume) or waits and sees the flag set below.
        newer = uow.requests.open_for_line(req.line_id, lock=True)
        if newer is not None:
            # A newer request owns the line's fate now. It takes over the suspension,
            # so that cancelling it too gives the SIM its service back; without this
            # nobody would, and the line would stay barred with nothing in progress.
            if newer.old_sim_barred(True, at=ctx.now(), from_request=req.id):
                uow.commit()
            return
        imsi, old_iccid = old.imsi, old.iccid
    # Only plain values leave the block: leaving it rolls back, which expires `req`.
    call_peer(ctx, job, "core.resume", lambda _cid: ctx.core.resume_imsi(imsi=imsi))
    now = ctx.now()
    with ctx.uow() as uow:
        old = repo.get_sim(uow, old_iccid, lock=True)
        if old.state == SimState.SUSPENDED:
            old.set_state(SimState.ACTIVE)
        uow.audit(
            at=now,
            actor="worker",
            action="sim.resumed",
            object_type="sim",
            object_id=old.iccid,
            detail={"request": job.request_id},
        )
        uow.commit()


def handle_download_progress(
    ctx: ServiceContext,
    progress: DownloadProgress,
    *,
    brands: frozenset[str] | None = None,
    via: str | None = None,
) -> None:
    """handleDownloadProgressInfo from the SM-DP+ (idempotent: it may be repeated).

    Point 4 success on a ready request records the install and enqueues the
    cut-over; point 4 failure records it so the customer can reissue.
    ``brands``: the brand ids the calling SM-DP+ serves (None: all); an ICCID
    of another brand is NotFound, exactly like one nobody ordered, and nothing
    changes. ``via``: how the caller was authenticated (audited).
    """
    now = ctx.now()
    installed = progress.notification_point_id == INSTALLED
    with ctx.uow() as uow:
        # Only point 4 changes the request; any other point is audited, for which
        # its id and brand suffice (issue 16: not a whole request loaded for it).
        req = None
        if installed:
            req = repo.find_request_by_new_iccid(uow, progress.iccid, lock=True)
            holder = None if req is None else (req.id, req.brand_id)
        else:
            holder = uow.requests.holder_of(progress.iccid, lock=True)
        if holder is None:
            raise NotFound("no replacement request for that ICCID", code="ICCID_UNKNOWN")
        request_id, brand_id = holder
        if brands is not None and brand_id not in brands:
            raise NotFound("no replacement request for that ICCID", code="ICCID_OTHER_BRAND")
        ok = progress.status in ("Executed-Success", "Executed-WithWarning")
        detail: dict[str, object] = {
            "point": progress.notification_point_id,
            "status": progress.status,
            "smdp": progress.smdp_id,
        }
        if via is not None:
            detail["via"] = via
        if req is not None and ok:
            record_installed(uow, req, at=now)
        elif req is not None:
            record_install_failed(req, at=now)
        uow.audit(
            at=now,
            actor=f"smdp:{progress.smdp_id}",
            action="esim.progress",
            object_type="request",
            object_id=request_id,
            detail=detail,
        )
        uow.commit()


def record_installed(uow: UnitOfWork, req: ReplacementRequest, *, at: dt.datetime) -> bool:
    """The new eSIM is on the device: record it and enqueue the cut-over, exactly once.

    Whoever learns it first (the SM-DP+'s point 4 callback, or the reconcile job
    that asked the core network or the SM-DP+) calls this under the request's
    row lock; everyone after finds ``installed_at`` set and changes nothing, so
    a late callback after a reconcile (or the reverse) is harmless. Returns
    whether this call recorded it.
    """
    return req.install(how="esim", actor="worker", at=at)  # Installed: core.cutover


def record_install_failed(req: ReplacementRequest, *, at: dt.datetime) -> bool:
    """Point 4 failed on the device: the customer may reissue."""
    return req.install_failed(at=at, actor="worker")


def cutover(ctx: ServiceContext, job: JobRecord) -> None:
    """Move the number to the new SIM, retire the old one, write the SIM change record.

    SEC-06: before the number moves, the new IMSI gets the brand's post-swap
    holds (SMS held for ``sms_hold_hours``, port-out blocked for
    ``port_out_block_days``), counted from the install (``installed_at``), so a
    retried job sets the very same values. A core network that cannot hold
    (osmo-hlr) refuses for good and the cut-over fails before the number moves.
    """
    assert job.request_id is not None
    with ctx.uow(read_only=True) as uow:
        plan = cutover_plan(ctx, uow, job.request_id)
    if plan is None:
        return
    for target, operation in plan.operations(ctx.core):
        call_peer(ctx, job, target, lambda _c, op=operation: op())  # type: ignore[misc]
    with ctx.uow() as uow:
        complete_in(ctx, uow, job.request_id, plan)
        uow.commit()


@dataclass(frozen=True)
class CutoverPlan:
    """What the core network is told, read from a ready request."""

    msisdn: str
    new_imsi: str
    old_imsi: str | None
    sms_until: dt.datetime | None
    port_until: dt.datetime | None

    def operations(self, core: CoreNetwork) -> list[tuple[str, Callable[[], None]]]:
        """(attempt target, call) in order: provision, holds (SEC-06, before the
        number moves), move the number, retire the old IMSI."""
        ops: list[tuple[str, Callable[[], None]]] = [
            ("core.provision", lambda: core.provision_imsi(imsi=self.new_imsi))
        ]
        if self.sms_until is not None or self.port_until is not None:
            ops.append(
                (
                    "core.post_swap_holds",
                    lambda: core.apply_post_swap_holds(
                        imsi=self.new_imsi,
                        sms_hold_until=self.sms_until,
                        port_out_block_until=self.port_until,
                    ),
                )
            )
        ops.append(
            (
                "core.move_msisdn",
                lambda: core.move_msisdn(
                    msisdn=self.msisdn, new_imsi=self.new_imsi, old_imsi=self.old_imsi
                ),
            )
        )
        if self.old_imsi is not None:
            old_imsi = self.old_imsi
            ops.append(("core.retire", lambda: core.retire_imsi(imsi=old_imsi)))
        return ops


def cutover_plan(ctx: ServiceContext, uow: UnitOfWork, request_id: str) -> CutoverPlan | None:
    """The core-network calls of a ready request's cut-over; None: not ready (any more)."""
    req = repo.get_request(uow, request_id)
    if req.state != State.READY or req.new_iccid is None:
        return None
    sms_until, port_until = post_swap_holds(
        repo.get_brand(uow, req.brand_id).policy, req.installed_at or ctx.now()
    )
    return CutoverPlan(
        msisdn=req.msisdn,
        new_imsi=repo.get_sim(uow, req.new_iccid).imsi,
        old_imsi=repo.get_sim(uow, req.old_iccid).imsi if req.old_iccid else None,
        sms_until=sms_until,
        port_until=port_until,
    )


def complete_in(ctx: ServiceContext, uow: UnitOfWork, request_id: str, plan: CutoverPlan) -> None:
    """The number moved: retire the old SIM, activate the new, write the SIM change
    record, complete the request (caller commits). A request no longer ready
    (another run of this job finished it) is left alone."""
    sms_until, port_until = plan.sms_until, plan.port_until
    now = ctx.now()
    req = repo.get_request(uow, request_id, lock=True)
    if req.state != State.READY:
        return
    assert req.new_iccid is not None
    if req.old_iccid:
        old = repo.get_sim(uow, req.old_iccid, lock=True)
        old.set_state(SimState.RETIRED)
        uow.flush()  # free the line's bound slot before the new SIM takes it
    new = repo.get_sim(uow, req.new_iccid, lock=True)
    new.set_state(SimState.ACTIVE, line_id=req.line_id)
    # A number that had no SIM (a line separation of a reserved number) has one now.
    repo.get_line(uow, req.line_id).first_sim_bound()
    resolve_by_cutover(uow, req, at=now)  # the lost SIM is retired: its report ends
    uow.sim_changes.add(
        SimChange(
            id=new_id(),
            msisdn=req.msisdn,
            line_id=req.line_id,
            changed_at=now,
            new_iccid=req.new_iccid,
            old_iccid=req.old_iccid,
            request_id=req.id,
        )
    )
    # CAMARA subscriptions: the swapped events commit with the SIM change record.
    enqueue_swap_events(ctx, uow, msisdn=req.msisdn, swapped_at=now)
    req.complete(at=now, sms_hold_until=sms_until, port_out_block_until=port_until)
    remember_origin(repo.get_subscriber(uow, req.subscriber_id), req)
    notify_customer(
        ctx, uow, kind="replacement_completed", request=req, context={"completed_at": now}
    )


def post_swap_holds(
    policy: BrandPolicy, swapped_at: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(SMS hold until, port-out block until) for a swap at ``swapped_at``; None: no hold."""
    sms = swapped_at + dt.timedelta(hours=policy.sms_hold_hours) if policy.sms_hold_hours else None
    port = (
        swapped_at + dt.timedelta(days=policy.port_out_block_days)
        if policy.port_out_block_days
        else None
    )
    return sms, port
