"""Turning a line's SIM-change lock off (SEC-05): strong verification, a notice, a delay.

Turning the lock on is :mod:`resim.services.locks.locks` (free, immediate). Off is
deliberately slow, because it is what a SIM-swap attacker needs first:

1. :func:`start_unlock` e-mails a one-time code to the address on file (its
   hash is kept on the line; single use; expires with ``otp_ttl_minutes``).
2. :func:`confirm_unlock` needs a combination from ``policy.unlock_methods``
   (counted like every verification, :mod:`resim.services.verification.attempts`, key
   ``unlock:<line id>``), then sets ``line.unlock_effective_at`` to now plus
   ``policy.unlock_delay_hours``, tells the customer, and enqueues the job
   ``lock.unlock_effective`` at that time. The lock keeps refusing
   replacements until then (``Line.is_locked``).
3. :func:`unlock_effective` (the job) clears the lock and tells the customer.

Locking again while an unlock is pending cancels it (``lock_line`` clears
``unlock_effective_at``; the job then finds nothing to do).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from resim.adapters.crypto import hash_otp
from resim.domain.identifiers import mask_msisdn, normalize_msisdn
from resim.domain.model import Brand, Line, Subscriber
from resim.domain.verification import offered
from resim.errors import Conflict, TooManyAttempts, VerificationFailed
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.notifications.brand_look import contact_values
from resim.services.notifications.notify import message_payload, notify_customer
from resim.services.outbox.external import JobRecord
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification.verification import Evidence, check_evidence, facts_of


@dataclass(frozen=True)
class UnlockStarted:
    msisdn_masked: str
    methods: tuple[tuple[str, ...], ...]  # the combinations this customer can unlock with
    code_sent: bool


@dataclass(frozen=True)
class UnlockScheduled:
    msisdn_masked: str
    effective_at: dt.datetime


def _locked_line(uow: UnitOfWork, msisdn: str, scope: Scope) -> Line:
    locked = repo.get_line_by_msisdn(uow, normalize_msisdn(msisdn), lock=True, scope=scope)
    if not locked.sim_change_locked:
        raise Conflict("this line has no SIM-change lock", code="NOT_LOCKED")
    if locked.unlock_effective_at is not None:
        raise Conflict(
            f"an unlock is already pending; it takes effect at "
            f"{locked.unlock_effective_at.isoformat()}",
            code="UNLOCK_PENDING",
        )
    return locked


def start_unlock(
    ctx: ServiceContext,
    msisdn: str,
    *,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> UnlockStarted:
    """Send an unlock code to the e-mail on file (when a combination uses it).
    A line out of the caller's ``scope`` is NotFound."""
    now = ctx.now()
    with ctx.uow() as uow:
        line = _locked_line(uow, msisdn, scope)
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        brand = repo.get_brand(uow, line.brand_id)
        policy = brand.policy
        combos = offered(policy.unlock_methods, facts_of(subscriber))
        send = any("email_otp" in c for c in combos)
        if send:
            code = ctx.otp_generator() if ctx.otp_generator else f"{secrets.randbelow(10**6):06d}"
            line.unlock_otp_hash = hash_otp(code, ctx.otp_pepper)
            line.unlock_otp_expires_at = now + dt.timedelta(minutes=policy.otp_ttl_minutes)
            enqueue_line_mail(
                ctx,
                uow,
                kind="one_time_code",
                line=line,
                subscriber=subscriber,
                brand=brand,
                context={"ttl_minutes": policy.otp_ttl_minutes},
                secret_context={"code": code},
            )
        uow.audit(
            at=now,
            actor=actor,
            action="line.unlock_started",
            object_type="line",
            object_id=line.id,
            detail={"code_sent": send, "source_ip": source_ip},
        )
        uow.commit()
        return UnlockStarted(mask_msisdn(line.msisdn), tuple(tuple(c) for c in combos), send)


def confirm_unlock(
    ctx: ServiceContext,
    msisdn: str,
    *,
    evidence: Evidence,
    actor: str = "customer",
    source_ip: str | None = None,
    scope: Scope = UNRESTRICTED,
) -> UnlockScheduled:
    """Verify with ``policy.unlock_methods``; schedule the unlock after the policy's delay.
    A line out of the caller's ``scope`` is NotFound, and nothing is counted."""
    now = ctx.now()
    with ctx.uow() as uow:
        line = _locked_line(uow, msisdn, scope)
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        brand = repo.get_brand(uow, line.brand_id)
        policy = brand.policy
        try:
            proofs = check_evidence(
                ctx,
                uow,
                request_or_none=None,
                subscriber=subscriber,
                line=line,
                evidence=evidence,
                combos=policy.unlock_methods,
                now=now,
                source_ip=source_ip,
                actor=actor,
            )
        except (TooManyAttempts, VerificationFailed):
            uow.commit()  # the failure counts
            raise
        effective = now + dt.timedelta(hours=policy.unlock_delay_hours)
        line.unlock_effective_at = effective
        uow.audit(
            at=now,
            actor=actor,
            action="line.unlock_requested",
            object_type="line",
            object_id=line.id,
            detail={
                "evidence": [p.record() for p in proofs],
                "effective_at": effective.isoformat(),
            },
        )
        notify_customer(
            ctx,
            uow,
            kind="unlock_requested",
            line=line,
            subscriber=subscriber,
            brand=brand,
            context={"effective_at": effective},
        )
        uow.enqueue(
            "lock.unlock_effective",
            at=now,
            payload={"line_id": line.id, "effective_at": effective.isoformat()},
            run_after=effective,
        )
        uow.commit()
        return UnlockScheduled(mask_msisdn(line.msisdn), effective)


def unlock_effective(ctx: ServiceContext, job: JobRecord) -> None:
    """Job ``lock.unlock_effective``: clear the lock if this unlock is still the pending one."""
    now = ctx.now()
    payload: dict[str, Any] = dict(job.payload)
    with ctx.uow() as uow:
        line = uow.lines.get(str(payload["line_id"]), lock=True)
        due = dt.datetime.fromisoformat(str(payload["effective_at"]))
        if line is None or line.unlock_effective_at != due:
            return  # locked again (pending unlock cancelled) or already done
        if now < due:  # claimed early: run again at the effective time
            uow.enqueue("lock.unlock_effective", at=now, payload=payload, run_after=due)
            uow.commit()
            return
        line.sim_change_locked = False
        line.unlock_effective_at = None
        line.lock_changed_at = now
        uow.audit(
            at=now,
            actor="system",
            action="line.unlocked",
            object_type="line",
            object_id=line.id,
            detail={"requested_effective_at": due.isoformat()},
        )
        notify_customer(ctx, uow, kind="unlock_effective", line=line)
        uow.commit()


def enqueue_line_mail(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    kind: str,
    line: Line,
    subscriber: Subscriber | None = None,
    brand: Brand | None = None,
    context: dict[str, Any] | None = None,
    secret_context: dict[str, Any] | None = None,
) -> str:
    """A ``mail.send`` job about a line (no request): to the e-mail on file, in their language."""
    subscriber = subscriber or repo.get_subscriber(uow, line.subscriber_id)
    brand = brand or repo.get_brand(uow, line.brand_id)
    base: dict[str, Any] = {
        "customer_name": subscriber.name,
        **contact_values(brand),
        "msisdn_masked": mask_msisdn(line.msisdn),
        "request_ref": f"L-{line.id[:8].upper()}",
        "timezone": brand.timezone,
        **(context or {}),
    }
    payload = message_payload(
        ctx,
        kind=kind,
        to=subscriber.email,
        language=subscriber.language or brand.language,
        context={**base, **(secret_context or {})},
    )
    return uow.enqueue("mail.send", at=ctx.now(), payload=payload)
