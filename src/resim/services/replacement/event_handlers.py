"""What a request's domain events imply: audit rows and outbox jobs (a pure mapping).

The unit of work calls :func:`effects` for every event a request it loaded or
added recorded (``ReplacementRequest.events``), in order, and writes the
result in the same transaction: the audit rows join the SEC-09 hash chain, the
jobs the outbox. So a state change, its audit row and the jobs it implies
commit together or not at all, and no service writes them by hand.

Audit actions and detail keys are the ones the audit report, the console and
the tests read (``request.created``, ``request.cancelled`` with ``from``, ...);
every audited transition adds ``transition``: the edge's reason from the table.
Nothing secret goes in: events carry none (``domain.events``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resim.domain import events as ev


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    action: str
    object_id: str
    at: dt.datetime
    detail: dict[str, Any]
    object_type: str = "request"
    source: str | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    kind: str
    request_id: str
    at: dt.datetime
    run_after: dt.datetime | None = None
    payload: dict[str, Any] | None = None


@dataclass(slots=True)
class Effects:
    audit: list[AuditEntry] = field(default_factory=list)
    jobs: list[JobSpec] = field(default_factory=list)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _audit(
    event: ev.RequestEvent,
    action: str,
    detail: dict[str, Any] | None = None,
    *,
    source: str | None = None,
) -> AuditEntry:
    full = dict(detail or {})
    if event.why is not None:
        full["transition"] = event.why
    return AuditEntry(
        actor=event.actor,
        action=action,
        object_id=event.request_id,
        at=event.at,
        detail=full,
        source=source,
    )


def _job(
    event: ev.RequestEvent,
    kind: str,
    *,
    run_after: dt.datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> JobSpec:
    return JobSpec(kind, event.request_id, event.at, run_after, payload)


def _withdraw(event: ev.RequestEvent, iccid: str | None) -> list[JobSpec]:
    if iccid is None:
        return []
    return [_job(event, "esim.cancel_order", payload={"iccid": iccid})]


def _opened(e: ev.Opened) -> Effects:
    detail: dict[str, Any] = {
        "kind": e.kind,
        "reason": e.reason,
        "channel": e.channel,
        "fee_minor": e.fee_minor,
        "target_form": e.target_form,
        "delivery_mode": e.delivery_mode,
        # SEC-07: which origin signals the risk rules will have (never the values)
        "device_signal": e.device_signal,
        "country": e.country,
        "lock_override": e.lock_override,
    }
    jobs = []
    if e.verify_by is not None:
        jobs.append(_job(e, "request.expire_unverified", run_after=e.verify_by))
    return Effects([_audit(e, "request.created", detail)], jobs)


def _code_issued(e: ev.CodeIssued) -> Effects:
    if e.action is None:
        return Effects()
    return Effects([_audit(e, e.action, dict(e.detail), source=e.source)])


def _reconfirmed(e: ev.Reconfirmed) -> Effects:
    detail = {"methods": list(e.methods), "purpose": e.purpose}
    return Effects([_audit(e, "request.reconfirmed", detail, source=e.source)])


def _risk_assessed(e: ev.RiskAssessed) -> Effects:
    detail = {
        "outcome": e.outcome,
        "decision": e.decision,
        "rules": list(e.rules),
        "required_approvals": e.required_approvals,
    }
    return Effects([_audit(e, "risk.assessed", detail)])


def _step_up_required(e: ev.StepUpRequired) -> Effects:
    detail = {"methods": list(e.methods), "rules": list(e.rules)}
    # A request waiting for a step-up holds the line (and, for lost or stolen,
    # keeps the old SIM barred): it must not wait for ever.
    job = _job(e, "request.expire_step_up", run_after=e.expires_at)
    return Effects([_audit(e, "risk.step_up_required", detail)], [job])


def _approved(e: ev.Approved) -> Effects:
    detail = {"approvals": list(e.approvers), "cooling_off_until": _iso(e.cooling_off_until)}
    jobs = []
    # A pickup card waits for the customer at the counter (services.handover).
    if e.delivery == "esim":
        jobs.append(_job(e, "esim.provision", run_after=e.cooling_off_until))
    elif e.delivery == "courier":
        jobs.append(_job(e, "courier.dispatch", run_after=e.cooling_off_until))
    return Effects([_audit(e, "request.approved", detail)], jobs)


def _lock_overridden(e: ev.LockOverridden) -> Effects:
    detail = {
        "identity_check": e.identity_check,
        "method": e.method,
        "justification": e.justification,
        "required_approvals": e.required_approvals,
    }
    return Effects([_audit(e, "request.lock_override", detail)])


def _sim_reserved(e: ev.SimReserved) -> Effects:
    if e.form == "courier":
        return Effects([_audit(e, "sim.reserved", {"iccid": e.iccid, "for": "courier"})])
    return Effects([_audit(e, "esim.reserved", {"iccid": e.iccid})])


def _marked_ready(e: ev.MarkedReady) -> Effects:
    job = _job(e, "request.expire_activation", run_after=e.expires_at)
    return Effects([_audit(e, "request.ready")], [job])


def _installed(e: ev.Installed) -> Effects:
    audit = []
    if e.how == "activated":  # a posted card, activated by the customer
        audit.append(_audit(e, "sim.activated", {"iccid": e.iccid}, source=e.source))
    return Effects(audit, [_job(e, "core.cutover")])


def _completed(e: ev.Completed) -> Effects:
    detail = {
        "new_iccid": e.new_iccid,
        "old_iccid": e.old_iccid,
        "sms_hold_until": _iso(e.sms_hold_until),
        "port_out_block_until": _iso(e.port_out_block_until),
    }
    return Effects([_audit(e, "request.completed", detail)])


def _cancelled(e: ev.Cancelled) -> Effects:
    # An order exists at the SM-DP+ only once provisioning finished a call; while
    # provisioning, the running job sees the cancel after its call and withdraws.
    audit = _audit(e, "request.cancelled", {"from": e.from_state})
    return Effects([audit], _withdraw(e, e.withdraw_iccid))


def _expired(e: ev.Expired) -> Effects:
    audit = _audit(e, "request.expired", {"why": e.what, "from": e.from_state})
    return Effects([audit], _withdraw(e, e.withdraw_iccid))


def _failed(e: ev.Failed) -> Effects:
    audit = _audit(e, "request.failed", {"code": e.code, "reason": e.reason})
    return Effects([audit], _withdraw(e, e.withdraw_iccid))


def _reissued(e: ev.Reissued) -> Effects:
    audit = _audit(e, "request.reissued", {"withdrawn_iccid": e.withdrawn_iccid})
    return Effects([audit], [_job(e, "esim.provision")])


def _old_sim(e: ev.OldSimBarred) -> Effects:
    if e.from_request is None:
        return Effects()
    detail = {"from_request": e.from_request, "iccid": e.iccid}
    return Effects([_audit(e, "sim.suspension_handed_over", detail)])


def _audit_only(action: str, detail: Callable[[Any], dict[str, Any]]) -> Callable[[Any], Effects]:
    return lambda e: Effects([_audit(e, action, detail(e))])


def _nothing(_e: Any) -> Effects:
    return Effects()


_HANDLERS: dict[type[ev.RequestEvent], Callable[[Any], Effects]] = {
    ev.Opened: _opened,
    ev.CodeIssued: _code_issued,
    ev.Reconfirmed: _reconfirmed,
    ev.Verified: _audit_only("request.verified", lambda e: {"methods": list(e.methods)}),
    ev.SteppedUp: _audit_only("request.stepped_up", lambda e: {"methods": list(e.methods)}),
    ev.RiskAssessed: _risk_assessed,
    ev.StepUpRequired: _step_up_required,
    ev.Held: _audit_only("request.held", lambda e: {"rules": list(e.rules)}),
    ev.ApprovalRecorded: _audit_only(
        "request.approval_recorded", lambda e: {"approvals": e.approvals, "required": e.required}
    ),
    ev.Approved: _approved,
    ev.Rejected: _audit_only("request.rejected", lambda e: {"code": e.code}),
    ev.LockOverridden: _lock_overridden,
    ev.ProvisioningStarted: _audit_only("request.provisioning", lambda e: {}),
    ev.SimReserved: _sim_reserved,
    ev.SmdpStepRecorded: _nothing,
    ev.MatchingIdFromSmdp: _audit_only("esim.matching_id_from_smdp", lambda e: {"empty": e.empty}),
    ev.MarkedReady: _marked_ready,
    ev.Dispatched: _audit_only(
        "sim.dispatched", lambda e: {"iccid": e.iccid, "shipment_ref": e.shipment_ref}
    ),
    ev.HandedOver: _audit_only("sim.handed_over", lambda e: {"iccid": e.iccid}),
    ev.Installed: _installed,
    ev.InstallFailed: _nothing,
    ev.Completed: _completed,
    ev.Cancelled: _cancelled,
    ev.Expired: _expired,
    ev.Failed: _failed,
    ev.Reissued: _reissued,
    ev.TakenOver: _audit_only(
        "request.taken_over",
        lambda e: {"from_channel": e.from_channel, "state": e.state, "check_id": e.check_id},
    ),
    ev.ReportedNotMe: _audit_only(
        "request.reported_not_me",
        lambda e: {
            "state": e.state,
            "cancelled": e.cancelled,
            "reversal_candidate": e.state == "completed",
        },
    ),
    ev.LanguageSet: _audit_only(
        "request.language_set", lambda e: {"language": e.language, "was": e.was}
    ),
    ev.OldSimBarred: _old_sim,
}


def effects(event: ev.RequestEvent) -> Effects:
    """The audit rows and jobs ``event`` implies (KeyError: an event nobody maps,
    which the unit tests rule out for every event class)."""
    return _HANDLERS[type(event)](event)


def handled_event_types() -> frozenset[type[ev.RequestEvent]]:
    return frozenset(_HANDLERS)
