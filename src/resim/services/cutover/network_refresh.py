"""A network refresh: the core network drops a line's SIM so the phone registers afresh
(issue 15, point 9).

For a customer whose new SIM will not attach (typically a stale registration
in the VLR/MME): an agent or the BSS asks for it on the line; the SIM in
service gets a Cancel-Location through the core network
(``CoreNetwork.cancel_location``). Access never changes: a barred SIM is not
refreshed (that is a suspension or a loss report, not a stale registration).

- :func:`request_refresh` (the caller's transaction): checks the line is in
  the caller's scope and has a SIM in service, audits
  ``line.network_refresh_requested`` and writes a ``core.refresh`` job, whose
  id names the refresh. Refreshes are not free of side effects (the phone
  loses service for a moment), so one is refused while another on the same
  line is still queued (``REFRESH_PENDING``).
- :func:`refresh` (the job): calls the core network with an attempt row
  (``core.refresh``) and audits the outcome on the refresh:
  ``network_refresh.sent`` (a serving element was told),
  ``network_refresh.nobody_serving`` (the phone never reached the network),
  ``network_refresh.refused`` (a permanent refusal, e.g. osmo-hlr's
  ``CORE_REFRESH_UNSUPPORTED``; the job ends, the outcome says why) or
  ``network_refresh.skipped`` (the SIM left service meanwhile). Retryable
  errors are retried by the job runner.
- :func:`latest_refresh` reads the line's newest refresh, in the caller's scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.domain.identifiers import normalize_msisdn
from resim.domain.model import SimState
from resim.errors import Conflict, ExternalError
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.outbox.external import JobRecord, call_peer

KIND = "core.refresh"
OBJECT = "network_refresh"
OUTCOMES = {
    "network_refresh.sent": "sent",
    "network_refresh.nobody_serving": "nobody_serving",
    "network_refresh.refused": "refused",
    "network_refresh.skipped": "skipped",
}


@dataclass(frozen=True)
class RefreshStatus:
    id: str
    msisdn: str
    state: str  # queued | sent | nobody_serving | refused | skipped
    requested_at: dt.datetime
    finished_at: dt.datetime | None = None
    code: str | None = None  # why, when refused


def request_refresh(
    ctx: ServiceContext,
    msisdn: str,
    *,
    actor: str,
    scope: Scope = UNRESTRICTED,
    source: str | None = None,
) -> RefreshStatus:
    """Queue a refresh of the line's SIM in service; NotFound outside ``scope``."""
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, lock=True, scope=scope)
        sim = repo.bound_sim(uow, line.id)
        if sim is None or sim.state != SimState.ACTIVE:
            raise Conflict(
                "the line has no SIM in service: a barred SIM is not refreshed",
                code="NO_SIM_IN_SERVICE",
            )
        if uow.lookups.job_pending_for_line(KIND, line.id):
            raise Conflict("a refresh of this line is under way", code="REFRESH_PENDING")
        refresh_id = uow.enqueue(KIND, at=now, payload={"line_id": line.id, "iccid": sim.iccid})
        uow.audit(
            at=now,
            actor=actor,
            action="line.network_refresh_requested",
            object_type="line",
            object_id=line.id,
            detail={"refresh": refresh_id, "iccid": sim.iccid},
            source=source,
        )
        uow.audit(
            at=now,
            actor=actor,
            action="network_refresh.requested",
            object_type=OBJECT,
            object_id=refresh_id,
            detail={"line": line.id, "iccid": sim.iccid},
            source=source,
        )
        uow.commit()
    return RefreshStatus(id=refresh_id, msisdn=number, state="queued", requested_at=now)


def refresh(ctx: ServiceContext, job: JobRecord) -> None:
    """The ``core.refresh`` job: one Cancel-Location through the core network."""
    iccid = str(job.payload["iccid"])
    with ctx.uow() as uow:
        sim = repo.get_sim(uow, iccid)
        in_service, imsi = sim.state == SimState.ACTIVE, sim.imsi
    if not in_service:
        _outcome(ctx, job, "network_refresh.skipped", {"sim_state": "not in service"})
        return
    try:
        served = call_peer(ctx, job, "core.refresh", lambda _c: ctx.core.cancel_location(imsi=imsi))
    except ExternalError as exc:
        if exc.retryable:
            raise
        _outcome(ctx, job, "network_refresh.refused", {"code": exc.code})
        return
    action = "network_refresh.sent" if served else "network_refresh.nobody_serving"
    _outcome(ctx, job, action, {})


def latest_refresh(ctx: ServiceContext, msisdn: str, *, scope: Scope) -> RefreshStatus | None:
    """The line's newest refresh as its audit trail tells it (None: never refreshed);
    NotFound outside ``scope``."""
    number = normalize_msisdn(msisdn)
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        asked = uow.audit_log.latest(
            action="line.network_refresh_requested", object_id=line.id, object_type="line"
        )
        if asked is None:
            return None
        refresh_id = str(asked.detail["refresh"])
        rows = uow.audit_log.events_of(object_type=OBJECT, object_id=refresh_id)
    last = rows[-1]
    state = OUTCOMES.get(last.action)
    return RefreshStatus(
        id=refresh_id,
        msisdn=number,
        state=state or "queued",
        requested_at=rows[0].at,
        finished_at=last.at if state else None,
        code=(last.detail or {}).get("code") if state else None,
    )


def _outcome(ctx: ServiceContext, job: JobRecord, action: str, detail: dict[str, str]) -> None:
    with ctx.uow() as uow:
        uow.audit(
            at=ctx.now(),
            actor="worker",
            action=action,
            object_type=OBJECT,
            object_id=job.id,
            detail={"iccid": str(job.payload["iccid"]), **detail},
        )
        uow.commit()
