"""Loss reports as their own use cases: block a lost or stolen phone's SIM, and lift the block.

Each function is one transaction. The line's row lock is taken after the
attempt counters, in the order a replacement's verification takes them (it
opens a report too: ``loss_hooks.open_for_request``), so the two never
deadlock; two "block" presses race to one report (``open_line_id`` UNIQUE).

* :func:`send_code`: an e-mail code for blocking (no report open) or for
  lifting (one open); the mail links to the portal's page for the line.
* :func:`report`: "Block my SIM now". One factor that does not need the lost
  SIM (``policy.loss_report_methods``: the e-mail code, the PIN, the
  password...), an agent's recorded ID check (``id_document``), or a trusted
  caller (an API client with the scope ``lines:loss``). Opens the report,
  enqueues ``loss.suspend``, tells the customer. Idempotent: an open report
  is returned as it is.
* :func:`lift`: "I found my phone". Strong verification only
  (``policy.loss_lift_methods``: two factors, or an agent's recorded ID
  check), never a trusted caller's word alone. Closes the report, enqueues
  ``loss.resume``, tells the customer on every channel on file.

Failures are counted like every verification (:mod:`resim.services.verification.attempts`,
key ``loss:<line id>``). Nothing here logs, audits or returns a secret.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from resim.adapters.crypto import hash_otp
from resim.domain.identifiers import mask_msisdn, normalize_msisdn
from resim.domain.loss import LossChannel, LossReason, LossReport, LossState
from resim.domain.model import Line
from resim.domain.verification import offered, strength
from resim.errors import Conflict, InvalidInput, TooManyAttempts, VerificationFailed
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.locks.loss_hooks import open_report
from resim.services.notifications.notify import message_payload, notify_customer
from resim.services.unit_of_work import UnitOfWork, new_id
from resim.services.verification.verification import Evidence, check_evidence, facts_of

# A new code is mailed at most this often per line (each press would otherwise mail one).
RESEND_GAP = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class LossStatus:
    """A line's loss report as pages and the API show it (never a secret)."""

    line_id: str
    msisdn: str
    msisdn_masked: str
    brand_id: str
    brand_name: str
    timezone: str
    blocked: bool
    report_id: str | None
    reason: str | None
    channel: str | None
    opened_at: dt.datetime | None
    suspended: bool  # the core network has barred the SIM
    last_state: str | None  # the newest report's state: open, resolved, lifted, voided
    closed_at: dt.datetime | None
    report_combos: tuple[tuple[str, ...], ...]
    lift_combos: tuple[tuple[str, ...], ...]


def _line(
    uow: UnitOfWork, *, msisdn: str | None, line_id: str | None, scope: Scope, lock: bool
) -> Line:
    if line_id is not None:
        return repo.get_line(uow, line_id, lock=lock, scope=scope)
    if not msisdn:
        raise InvalidInput("a phone number is required", code="NUMBER_REQUIRED")
    return repo.get_line_by_msisdn(uow, normalize_msisdn(msisdn), lock=lock, scope=scope)


def _lock_line(uow: UnitOfWork, line_id: str) -> None:
    uow.lines.lock(line_id)


def _newest(uow: UnitOfWork, line_id: str) -> LossReport | None:
    return uow.loss_reports.newest_for_line(line_id)


def _status(uow: UnitOfWork, line: Line) -> LossStatus:
    brand = repo.get_brand(uow, line.brand_id)
    subscriber = repo.get_subscriber(uow, line.subscriber_id)
    policy = brand.policy
    report = open_report(uow, line.id) or _newest(uow, line.id)
    facts = facts_of(subscriber)
    is_open = report is not None and report.is_open
    return LossStatus(
        line_id=line.id,
        msisdn=line.msisdn,
        msisdn_masked=mask_msisdn(line.msisdn),
        brand_id=line.brand_id,
        brand_name=brand.name,
        timezone=brand.timezone,
        blocked=is_open,
        report_id=report.id if report is not None else None,
        reason=report.reason.value if report is not None else None,
        channel=report.channel.value if report is not None else None,
        opened_at=report.opened_at if report is not None else None,
        suspended=bool(is_open and report is not None and report.suspended_at is not None),
        last_state=report.state.value if report is not None else None,
        closed_at=report.closed_at if report is not None else None,
        report_combos=tuple(tuple(c) for c in offered(policy.loss_report_methods, facts)),
        lift_combos=tuple(tuple(c) for c in offered(policy.loss_lift_methods, facts)),
    )


def status(
    ctx: ServiceContext,
    *,
    msisdn: str | None = None,
    line_id: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> LossStatus:
    """The line's loss report; NotFound for an unknown line or one out of ``scope``."""
    with ctx.uow() as uow:
        return _status(uow, _line(uow, msisdn=msisdn, line_id=line_id, scope=scope, lock=False))


def send_code(
    ctx: ServiceContext,
    *,
    msisdn: str | None = None,
    line_id: str | None = None,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> bool:
    """Mail a code for blocking (no report open) or lifting (one open) to the e-mail on file.

    Returns whether a mail went out: not when the last code is younger than
    :data:`RESEND_GAP`, or no combination of the policy uses the e-mail code.
    NotFound for an unknown line (the portal answers every number alike).
    """
    now = ctx.now()
    with ctx.uow() as uow:
        line = _line(uow, msisdn=msisdn, line_id=line_id, scope=scope, lock=True)
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        brand = repo.get_brand(uow, line.brand_id)
        policy = brand.policy
        lifting = open_report(uow, line.id) is not None
        combos = policy.loss_lift_methods if lifting else policy.loss_report_methods
        if not any("email_otp" in c for c in offered(combos, facts_of(subscriber))):
            return False
        ttl = dt.timedelta(minutes=policy.otp_ttl_minutes)
        sent_at = line.loss_otp_expires_at - ttl if line.loss_otp_expires_at else None
        if sent_at is not None and now - sent_at < RESEND_GAP:
            return False
        code = ctx.otp_generator() if ctx.otp_generator else f"{secrets.randbelow(10**6):06d}"
        line.loss_otp_hash = hash_otp(code, ctx.otp_pepper)
        line.loss_otp_expires_at = now + ttl
        payload = message_payload(
            ctx,
            kind="loss_code",
            to=subscriber.email,
            language=subscriber.language or brand.language,
            context={
                "customer_name": subscriber.name,
                "brand_name": brand.name,
                "msisdn_masked": mask_msisdn(line.msisdn),
                "purpose": "lift" if lifting else "report",
                "ttl_minutes": policy.otp_ttl_minutes,
                "page_url": f"{ctx.public_base_url}/portal/lost/{line.id}",
                "code": code,
            },
        )
        uow.enqueue("mail.send", at=now, payload=payload)
        uow.audit(
            at=now,
            actor=actor,
            action="loss.code_sent",
            object_type="line",
            object_id=line.id,
            detail={"purpose": "lift" if lifting else "report", "source_ip": source_ip},
        )
        uow.commit()
        return True


def report(
    ctx: ServiceContext,
    *,
    reason: str,
    channel: LossChannel,
    actor: str,
    msisdn: str | None = None,
    line_id: str | None = None,
    evidence: Evidence | None = None,
    trusted: bool = False,
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> tuple[LossStatus, bool]:
    """Block the line's SIM; returns (status, whether this call opened the report).

    ``evidence`` is checked against ``policy.loss_report_methods`` (for an
    agent: ``Evidence(staff_id=...)``, which needs the agent's live ID check).
    ``trusted`` skips it: an API client with the scope ``lines:loss``, whose
    own app verified the user. A wrong answer is counted and committed before
    VerificationFailed is raised.
    """
    try:
        why = LossReason(reason)
    except ValueError:
        raise InvalidInput("the reason is lost or stolen", code="INVALID_REASON") from None
    now = ctx.now()
    with ctx.uow() as uow:
        line = _line(uow, msisdn=msisdn, line_id=line_id, scope=scope, lock=False)
        if open_report(uow, line.id) is not None:
            return _status(uow, line), False
        if repo.bound_sim(uow, line.id) is None:
            raise Conflict("the line has no SIM to block", code="NO_SIM")
        records: list[dict[str, Any]]
        if trusted:
            records = [{"method": "trusted_client", "strength": 0, "by": actor}]
        else:
            records = _prove(
                ctx,
                uow,
                line,
                evidence or Evidence(),
                lift=False,
                now=now,
                actor=actor,
                source_ip=source_ip,
            )
        # Lock order as a verification's: attempt counters (checked above), then
        # the line. A press that raced ours and won leaves its report to us.
        _lock_line(uow, line.id)
        if open_report(uow, line.id) is not None:
            uow.commit()
            return _status(uow, line), False
        sim = repo.bound_sim(uow, line.id)
        if sim is None:
            raise Conflict("the line has no SIM to block", code="NO_SIM")
        loss = LossReport(
            id=new_id(),
            line_id=line.id,
            brand_id=line.brand_id,
            subscriber_id=line.subscriber_id,
            msisdn=line.msisdn,
            iccid=sim.iccid,
            reason=why,
            channel=channel,
            opened_by=actor,
            opened_at=now,
            evidence=records,
        )
        uow.loss_reports.add(loss)
        uow.audit(
            at=now,
            actor=actor,
            action="loss.reported",
            object_type="loss_report",
            object_id=loss.id,
            detail={
                "line": line.id,
                "iccid": sim.iccid,
                "reason": why.value,
                "channel": channel.value,
                "methods": [r["method"] for r in records],
                "source_ip": source_ip,
            },
        )
        uow.enqueue("loss.suspend", at=now, payload={"report_id": loss.id})
        notify_customer(ctx, uow, kind="loss_reported", line=line)
        uow.flush()
        uow.commit()
        return _status(uow, line), True


def lift(
    ctx: ServiceContext,
    *,
    actor: str,
    evidence: Evidence,
    msisdn: str | None = None,
    line_id: str | None = None,
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> LossStatus:
    """ "I found my phone": strong verification lifts the block and resumes the SIM.

    Conflict (NOT_BLOCKED) when no report is open. Every channel on file is
    told, the line's own number included (its SIM works again).
    """
    now = ctx.now()
    not_blocked = Conflict("the line's SIM is not blocked", code="NOT_BLOCKED")
    with ctx.uow() as uow:
        line = _line(uow, msisdn=msisdn, line_id=line_id, scope=scope, lock=False)
        if open_report(uow, line.id) is None:
            raise not_blocked
        records = _prove(
            ctx, uow, line, evidence, lift=True, now=now, actor=actor, source_ip=source_ip
        )
        _lock_line(uow, line.id)  # after the attempt counters, as everywhere
        loss = open_report(uow, line.id, lock=True)
        if loss is None:  # a cut-over resolved it meanwhile
            uow.commit()
            raise not_blocked
        why = loss.close(LossState.LIFTED, by=actor, at=now, evidence=records)
        uow.audit(
            at=now,
            actor=actor,
            action="loss.lifted",
            object_type="loss_report",
            object_id=loss.id,
            detail={
                "why": why,
                "evidence": records,
                "iccid": loss.iccid,
                "source_ip": source_ip,
            },
        )
        uow.enqueue("loss.resume", at=now, payload={"report_id": loss.id})
        notify_customer(ctx, uow, kind="loss_lifted", line=line)
        uow.flush()
        uow.commit()
        return _status(uow, line)


def _prove(
    ctx: ServiceContext,
    uow: UnitOfWork,
    line: Line,
    evidence: Evidence,
    *,
    lift: bool,
    now: dt.datetime,
    actor: str,
    source_ip: str | None,
) -> list[dict[str, Any]]:
    policy = repo.get_brand(uow, line.brand_id).policy
    combos = policy.loss_lift_methods if lift else policy.loss_report_methods
    if evidence.staff_id:
        combos = [c for c in combos if "id_document" in c] or [["id_document"]]
        if lift:
            combos = [c for c in combos if _strong(c)] or [["id_document"]]
    try:
        proofs = check_evidence(
            ctx,
            uow,
            request_or_none=None,
            subscriber=repo.get_subscriber(uow, line.subscriber_id),
            line=line,
            evidence=evidence,
            combos=combos,
            now=now,
            source_ip=source_ip,
            actor=actor,
            loss=True,
        )
    except (TooManyAttempts, VerificationFailed):
        uow.commit()  # the failure counts
        raise
    return [p.record() for p in proofs]


def _strong(combo: list[str]) -> bool:
    return strength(combo) >= 2


def find_line_id(ctx: ServiceContext, msisdn: str) -> str:
    """The line's id for a number (NotFound otherwise): the portal's page for it."""
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, normalize_msisdn(msisdn))
        return line.id
