"""Lost install callbacks: ask whether a ready eSIM was installed (issue 13, finding 6).

The cut-over waits for the SM-DP+'s handleDownloadProgressInfo, point 4
(``cutover.handle_download_progress``). The SM-DP+ retries a callback only so
often: with resim's API down for ~10 s, a few profiles were installed on
phones while their requests stayed ``ready`` for good. Nothing else would move
them, and the code would later expire on an installed phone.

So every request that becomes ready gets an ``esim.reconcile`` job, due
``ctx.reconcile_after`` later. It asks what can be asked, in this order:

1. the core network, whether the new SIM's IMSI has attached
   (``CoreNetwork.attached``; ``ctx.reconcile_ask_core``). A phone registering
   with the new IMSI proves the profile is installed. A core network that
   cannot tell (``CORE_ATTACH_UNSUPPORTED``) is skipped;
2. the SM-DP+, for the profile's state, where one is configured
   (``ctx.smdp_status``: ES2+ has no such query, so only resim's emulator
   offers one; see ``ports.SmdpStatusQuery``).

"installed" runs the very step the callback would (``cutover.record_installed``:
``installed_at`` and a ``core.cutover`` job, once; a real callback arriving
later changes nothing). "failed" at the SM-DP+ records the failed install so
the customer can reissue, as a failure callback would. Otherwise the job
schedules its successor at twice the interval (at most
``ctx.reconcile_max_interval``), the last one just before the activation code
expires; a peer that cannot be reached counts as "not known yet" and the chain
goes on. A job whose request moved on (installed, reissued to another ICCID,
cancelled, expired) ends without asking anyone.

The customer's "I have installed it" (:func:`check_now`) enqueues the same job,
due now and not repeating; presses back off like resent codes (SEC-03).

Transactions: the handler reads in one unit of work, asks the peers outside any
transaction (read-only questions need no attempt row), then re-reads the
request under its row lock and acts only if it is still waiting for that ICCID.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import structlog

from resim.adapters.corenet.rules import ATTACH_UNSUPPORTED
from resim.domain.model import ReplacementRequest
from resim.domain.workflow import State
from resim.errors import Conflict, ExternalError
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.cutover.cutover import record_install_failed, record_installed
from resim.services.outbox.external import JobRecord
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification import attempts

JOB = "esim.reconcile"
log = structlog.get_logger()


@dataclass
class Answer:
    state: str = "unknown"  # "installed" | "failed" | "unknown"
    source: str | None = None  # "core" | "smdp"
    notes: list[str] = field(default_factory=list)  # what each peer said (codes, no data)


def schedule(
    ctx: ServiceContext, uow: UnitOfWork, req: ReplacementRequest, *, at: dt.datetime
) -> None:
    """Enqueue the first check of a request that just became ready (caller commits)."""
    assert req.new_iccid is not None
    uow.enqueue(
        JOB,
        at=at,
        request_id=req.id,
        run_after=at + ctx.reconcile_after,
        payload={"iccid": req.new_iccid, "round": 0, "by": "schedule"},
    )


def _waiting(req: ReplacementRequest, iccid: str) -> bool:
    return req.state == State.READY and req.new_iccid == iccid and req.installed_at is None


def reconcile(ctx: ServiceContext, job: JobRecord) -> None:
    """Job ``esim.reconcile`` (see the module docstring)."""
    assert job.request_id is not None
    iccid = str(job.payload["iccid"])
    with ctx.uow() as uow:
        req = repo.get_request(uow, job.request_id)
        if not _waiting(req, iccid):
            return
        imsi = repo.get_sim(uow, iccid).imsi
    answer = ask(ctx, imsi=imsi, iccid=iccid)
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, job.request_id, lock=True)
        if not _waiting(req, iccid):
            uow.commit()
            return
        detail: dict[str, Any] = {"source": answer.source, "by": job.payload.get("by")}
        if answer.state == "installed" and record_installed(uow, req, at=now):
            _audit(uow, req, now, "esim.install_reconciled", detail)
        elif answer.state == "failed" and record_install_failed(req, at=now):
            _audit(uow, req, now, "esim.install_failure_reconciled", detail)
        elif job.payload.get("by") == "schedule":
            done = job.payload.get("round", 0)
            _next(ctx, uow, req, iccid, done if isinstance(done, int) else 0, now)
        uow.commit()
    log.info(
        "esim.reconcile.checked",
        request_id=job.request_id,
        result=answer.state,
        source=answer.source,
        notes=answer.notes,
    )


def ask(ctx: ServiceContext, *, imsi: str, iccid: str) -> Answer:
    """Ask the core network, then the SM-DP+; the first definite answer wins."""
    answer = Answer()
    if ctx.reconcile_ask_core:
        try:
            if ctx.core.attached(imsi=imsi):
                return Answer("installed", "core", answer.notes)
            answer.notes.append("core: not attached")
        except ExternalError as exc:
            answer.notes.append(f"core: {exc.code}")
            if exc.code != ATTACH_UNSUPPORTED:
                log.warning("esim.reconcile.core_failed", code=exc.code)
    if ctx.smdp_status is not None:
        try:
            state = ctx.smdp_status.install_state(iccid=iccid)
        except ExternalError as exc:
            answer.notes.append(f"smdp: {exc.code}")
            log.warning("esim.reconcile.smdp_failed", code=exc.code)
        else:
            if state != "not_installed":
                return Answer(state, "smdp", answer.notes)
            answer.notes.append("smdp: not installed")
    return answer


def _next(
    ctx: ServiceContext,
    uow: UnitOfWork,
    req: ReplacementRequest,
    iccid: str,
    round_: int,
    now: dt.datetime,
) -> None:
    """The chain's next check: twice the last interval (capped), never after expiry."""
    delay = min(ctx.reconcile_after * 2 ** (round_ + 1), ctx.reconcile_max_interval)
    at = now + delay
    expires = req.activation_expires_at
    if expires is not None and at >= expires:
        at = expires - dt.timedelta(seconds=1)  # one last look before the code expires
        if at <= now:
            return  # expiry is due: request.expire_activation takes it from here
    uow.enqueue(
        JOB,
        at=now,
        request_id=req.id,
        run_after=at,
        payload={"iccid": iccid, "round": round_ + 1, "by": "schedule"},
    )


def check_now(
    ctx: ServiceContext, request_id: str, *, actor: str = "customer", scope: Scope = UNRESTRICTED
) -> None:
    """The customer says the eSIM is installed: check at once (the same job, due now).

    Refused (Conflict) unless the request is ready and not yet known installed.
    One check at a time: while one is due or running nothing new is queued.
    Presses count like resent codes: after the brand's ``backoff_after_failures``
    each must wait longer (TooManyAttempts), so the button cannot be used to
    hammer the core network or the SM-DP+. A request out of ``scope`` is NotFound.
    """
    now = ctx.now()
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, lock=True, scope=scope)
        if req.installed_at is not None or req.state == State.COMPLETED:
            raise Conflict(
                "the eSIM is already known to be installed", code="INSTALL_ALREADY_KNOWN"
            )
        if req.state != State.READY or req.new_iccid is None:
            raise Conflict("there is no eSIM waiting to be installed", code="NOT_READY")
        brand = repo.get_brand(uow, req.brand_id)
        limits = attempts.Limits.from_policy(brand.policy, ip_max_failures=ctx.ip_max_failures)
        key = [f"install-check:{req.id}"]
        attempts.guard(uow, key, now, limits)
        attempts.record_failure(uow, key, now, limits)
        queued = uow.jobs.exists(
            request_id=req.id, kind=JOB, states=("pending", "running"), due_by=now
        )
        if not queued:
            uow.enqueue(
                JOB, at=now, request_id=req.id, payload={"iccid": req.new_iccid, "by": "customer"}
            )
        _audit(uow, req, now, "esim.install_reported", {"by": actor}, actor=actor)
        uow.commit()


def _audit(
    uow: UnitOfWork,
    req: ReplacementRequest,
    at: dt.datetime,
    action: str,
    detail: dict[str, Any],
    *,
    actor: str = "worker",
) -> None:
    uow.audit(
        at=at, actor=actor, action=action, object_type="request", object_id=req.id, detail=detail
    )
