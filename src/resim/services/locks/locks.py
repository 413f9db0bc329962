"""The SIM-change lock (SEC-05, lock-on half) and the agent's lock override (SEC-08).

A lock is free and takes effect at once: while it holds, every replacement is
refused with a clear reason (``open_request`` calls :func:`check_line_lock`).
Turning it off is team VERIFY's ``services/locks/unlock.py``: it sets
``line.unlock_effective_at`` and the lock keeps refusing until then
(:meth:`Line.is_locked`). Locking again cancels a pending unlock.

Lock override: a customer in a store, with an identity document, who cannot
unlock (lost phone, no access to the mailbox). An agent who recorded a live
identity check on the line may open a request anyway, with a justification; the
request is marked ``lock_override``, needs two approvers and is always held for
review (the ``sim_change_lock`` risk rule turns from deny into review).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.domain.identifiers import normalize_msisdn
from resim.domain.model import Brand, Channel, Line, ReplacementRequest, Subscriber
from resim.domain.security import IdentityCheck
from resim.errors import Conflict, InvalidInput, Refused
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.notifications.notify import notify_customer
from resim.services.unit_of_work import UnitOfWork

JUSTIFICATION_MAX = 500
# A lock override needs this many distinct approvers (SEC-08 four eyes).
OVERRIDE_APPROVALS = 2


@dataclass(frozen=True)
class LockStatus:
    """What a customer, an agent or the BSS may know about a line's lock (no personal data)."""

    msisdn: str
    locked: bool
    since: dt.datetime | None
    unlock_effective_at: dt.datetime | None  # set while an unlock is pending


@dataclass(frozen=True)
class LockOverride:
    """An agent's request to open a replacement on a locked line (``open_request``)."""

    justification: str


def lock_line(
    ctx: ServiceContext,
    msisdn: str,
    *,
    actor: str,
    scope: Scope = UNRESTRICTED,
) -> LockStatus:
    """Turn the SIM-change lock on, at once and free of charge; idempotent.

    On an unlocked line, or one with a pending unlock, it sets the lock, records
    the time, cancels the pending unlock, audits ``line.locked`` and notifies the
    customer, all in one transaction. On a line already locked with no unlock
    pending it changes nothing (no audit event, no second notice).

    ``scope`` (a customer session's verified line, or staff or a client limited
    to one brand) restricts which line may be named; another line is reported
    as not found, so its existence is not revealed.
    """
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, lock=True, scope=scope)
        if line.sim_change_locked and line.unlock_effective_at is None:
            return _status(line, now)
        cancelled_unlock = line.sim_change_locked and line.unlock_effective_at is not None
        line.sim_change_locked = True
        line.lock_changed_at = now
        line.unlock_effective_at = None  # locking again cancels a pending unlock
        uow.audit(
            at=now,
            actor=actor,
            action="line.locked",
            object_type="line",
            object_id=line.id,
            detail={"cancelled_pending_unlock": cancelled_unlock},
        )
        subscriber = repo.get_subscriber(uow, line.subscriber_id)
        brand = repo.get_brand(uow, line.brand_id)
        notify_lock_on(ctx, uow, line=line, subscriber=subscriber, brand=brand)
        status = _status(line, now)
        uow.commit()
        return status


def lock_status(
    ctx: ServiceContext,
    msisdn: str,
    *,
    scope: Scope = UNRESTRICTED,
) -> LockStatus:
    """Whether the lock refuses replacements now, since when, and any pending unlock."""
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        return _status(line, now)


def notify_lock_on(
    ctx: ServiceContext, uow: UnitOfWork, *, line: Line, subscriber: Subscriber, brand: Brand
) -> list[str]:
    """Enqueue the "lock_on" notice on every contact point on file (``notify_customer``)."""
    return notify_customer(
        ctx,
        uow,
        kind="lock_on",
        line=line,
        subscriber=subscriber,
        brand=brand,
        context={"locked_at": ctx.now()},
    )


def check_line_lock(
    uow: UnitOfWork,
    line: Line,
    *,
    now: dt.datetime,
    channel: Channel,
    actor: str,
    override: LockOverride | None,
) -> IdentityCheck | None:
    """Refuse a replacement on a locked line, unless this is a valid agent override.

    Returns the identity check that allows an override (the caller then calls
    :func:`apply_override` on the new request), or None when the line is not
    locked. Raises ``Refused(SIM_CHANGE_LOCKED)`` saying when a pending unlock
    takes effect; for a bad override: ``InvalidInput`` (no justification),
    ``Conflict(LOCK_NOT_ON)`` (nothing to override), ``Refused`` (not an agent,
    or no live identity check by this agent on this line).
    """
    if not line.is_locked(now):
        if override is not None:
            raise Conflict(
                "the line has no SIM-change lock to override; open a normal request",
                code="LOCK_NOT_ON",
            )
        return None
    if override is None:
        raise Refused(_locked_message(line), code="SIM_CHANGE_LOCKED")
    justification = override.justification.strip()
    if not justification:
        raise InvalidInput("a lock override needs a justification", code="JUSTIFICATION_REQUIRED")
    if len(justification) > JUSTIFICATION_MAX:
        raise InvalidInput(
            f"the justification is longer than {JUSTIFICATION_MAX} characters",
            code="JUSTIFICATION_TOO_LONG",
        )
    if channel != Channel.AGENT or not actor.startswith("staff:"):
        raise Refused(
            "only an agent in a store or on the hotline may override a SIM-change lock",
            code="LOCK_OVERRIDE_AGENT_ONLY",
        )
    check = live_identity_check(
        uow, staff_id=actor.removeprefix("staff:"), line_id=line.id, now=now
    )
    if check is None:
        raise Refused(
            "a lock override needs a live identity check by this agent on this line",
            code="IDENTITY_CHECK_REQUIRED",
        )
    return check


def apply_override(
    uow: UnitOfWork,
    request: ReplacementRequest,
    *,
    override: LockOverride,
    check: IdentityCheck,
    actor: str,
    at: dt.datetime,
) -> None:
    """Mark a new request as a lock override: two approvers, always reviewed, audited."""
    request.override_lock(
        identity_check=check.id,
        method=check.method,
        justification=override.justification.strip(),
        approvals=OVERRIDE_APPROVALS,
        actor=actor,
        at=at,
    )


def live_identity_check(
    uow: UnitOfWork, *, staff_id: str, line_id: str, now: dt.datetime
) -> IdentityCheck | None:
    """The newest identity check this agent recorded on this line that has not expired."""
    return uow.identity_checks.newest_valid(staff_id=staff_id, line_id=line_id, at=now)


def _locked_message(line: Line) -> str:
    message = "the line has a SIM-change lock; the account holder must remove it first"
    if line.unlock_effective_at is not None:
        when = line.unlock_effective_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        message = (
            "the line has a SIM-change lock; its removal was requested and takes effect "
            f"at {when}, replacements are refused until then"
        )
    return message


def _status(line: Line, now: dt.datetime) -> LockStatus:
    locked = line.is_locked(now)
    return LockStatus(
        msisdn=line.msisdn,
        locked=locked,
        since=line.lock_changed_at if locked else None,
        unlock_effective_at=line.unlock_effective_at if locked else None,
    )
