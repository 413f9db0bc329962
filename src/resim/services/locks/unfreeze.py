"""Unfreezing an account (issue 12, finding 2).

An account's replacements are frozen (``subscriber.replacements_frozen_at``)
when the customer says a request was "not me" (:mod:`resim.services.replacement.cancel`)
or the account reaches its attempt cap (:mod:`resim.services.verification.attempts`).
Only reviewers lift a freeze, with a reason, in one transaction each:

* the brand's ``unfreeze_reviewers`` = 1: the first approval lifts it;
* = 2 (two-person rule): the first approval is recorded on the subscriber
  (``unfreeze_requested_by/_at/_reason``) and the account stays frozen; a
  second approval by a *different* reviewer lifts it (the same reviewer
  again: ``Refused(SAME_REVIEWER)``, nothing changed).

Lifting clears the account's attempt counter (so the cap does not freeze
it again on the next try), acknowledges the open alerts about the account,
is audited (``account.unfrozen``, with every reviewer and reason) and tells
the customer on every contact point (notice ``account_unfrozen``).

Tenancy: the line is looked up in the reviewer's ``scope``; another brand's
line is NotFound and nothing is written. The subscriber row is locked first
(``FOR UPDATE`` on PostgreSQL), so two reviewers approving at once are
decided one after the other: the second sees the first's approval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from resim.domain.identifiers import normalize_msisdn
from resim.domain.model import Line, Subscriber
from resim.errors import Conflict, InvalidInput, PermissionDenied, Refused
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext
from resim.services.notifications.notify import notify_customer
from resim.services.unit_of_work import UnitOfWork
from resim.services.verification import attempts

REASON_MAX = 500


@dataclass(frozen=True)
class UnfreezeOutcome:
    """``unfrozen``: the freeze was lifted; else it waits for ``approvals_needed`` more."""

    unfrozen: bool
    approvals: int
    approvals_needed: int


def clean_reason(reason: str | None) -> str:
    """The reason, trimmed; InvalidInput (REASON_REQUIRED) if empty or too long."""
    text = " ".join((reason or "").split())
    if not text:
        raise InvalidInput("give the reason for unfreezing the account", code="REASON_REQUIRED")
    if len(text) > REASON_MAX:
        raise InvalidInput(
            f"the reason is too long (at most {REASON_MAX} characters)", code="REASON_TOO_LONG"
        )
    return text


def unfreeze(
    ctx: ServiceContext,
    *,
    msisdn: str,
    reviewer: str,
    reason: str,
    scope: Scope = UNRESTRICTED,
) -> UnfreezeOutcome:
    """Approve lifting the freeze on the account of the line ``msisdn``.

    ``reviewer``: the approving reviewer's actor ("staff:<id>"). Raises
    InvalidInput (REASON_REQUIRED) for an empty reason, NotFound for a line out
    of ``scope``, Conflict (NOT_FROZEN) when the account is not frozen and
    Refused (SAME_REVIEWER) when the two-person rule needs someone else.
    """
    why = clean_reason(reason)
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        subscriber = uow.subscribers.get(line.subscriber_id, lock=uow.dialect == "postgresql")
        assert subscriber is not None  # foreign key
        if subscriber.replacements_frozen_at is None:
            raise Conflict("replacements on this account are not frozen", code="NOT_FROZEN")
        needed = repo.get_brand(uow, line.brand_id).policy.unfreeze_reviewers
        first = subscriber.unfreeze_requested_by
        if needed > 1 and first is None:
            subscriber.unfreeze_requested_by = reviewer
            subscriber.unfreeze_requested_at = now
            subscriber.unfreeze_reason = why
            uow.audit(
                at=now,
                actor=reviewer,
                action="account.unfreeze_approved",
                object_type="subscriber",
                object_id=subscriber.id,
                detail={"reason": why, "approvals": 1, "needed": needed},
            )
            uow.commit()
            return UnfreezeOutcome(unfrozen=False, approvals=1, approvals_needed=needed - 1)
        if needed > 1 and first == reviewer:
            raise Refused(
                "you already approved unfreezing this account; a second reviewer must decide",
                code="SAME_REVIEWER",
            )
        _lift(ctx, uow, subscriber, line, reviewer=reviewer, reason=why, now=now)
        uow.commit()
        return UnfreezeOutcome(unfrozen=True, approvals=needed, approvals_needed=0)


def _lift(
    ctx: ServiceContext,
    uow: UnitOfWork,
    subscriber: Subscriber,
    line: Line,
    *,
    reviewer: str,
    reason: str,
    now: dt.datetime,
) -> None:
    reviewers = [r for r in (subscriber.unfreeze_requested_by, reviewer) if r]
    reasons = [r for r in (subscriber.unfreeze_reason, reason) if r]
    detail = {
        "frozen_at": subscriber.replacements_frozen_at.isoformat()
        if subscriber.replacements_frozen_at
        else None,
        "frozen_reason": subscriber.frozen_reason,
        "reviewers": reviewers,
        "reasons": reasons,
    }
    subscriber.replacements_frozen_at = None
    subscriber.frozen_reason = None
    subscriber.unfreeze_requested_by = None
    subscriber.unfreeze_requested_at = None
    subscriber.unfreeze_reason = None
    attempts.clear(uow, [f"account:{subscriber.id}"])
    acknowledged = _acknowledge_alerts(uow, subscriber.id, by=reviewer, at=now)
    uow.audit(
        at=now,
        actor=reviewer,
        action="account.unfrozen",
        object_type="subscriber",
        object_id=subscriber.id,
        detail={**detail, "alerts_acknowledged": acknowledged},
    )
    notify_customer(ctx, uow, kind="account_unfrozen", line=line, subscriber=subscriber)


def _acknowledge_alerts(uow: UnitOfWork, subscriber_id: str, *, by: str, at: dt.datetime) -> int:
    return uow.alerts.acknowledge_about_subscriber(subscriber_id, by=by, at=at)


def freeze_view(uow: UnitOfWork, subscriber: Subscriber) -> dict[str, Any]:
    """What the console's line page says about a freeze (no personal data)."""
    frozen_at = subscriber.replacements_frozen_at
    return {
        "frozen": frozen_at is not None,
        "frozen_at": frozen_at.isoformat() if frozen_at else None,
        "frozen_reason": freeze_reason_code(subscriber.frozen_reason) if frozen_at else None,
        "unfreeze_requested_by": subscriber.unfreeze_requested_by if frozen_at else None,
        "unfreeze_requested_at": (
            subscriber.unfreeze_requested_at.isoformat()
            if frozen_at and subscriber.unfreeze_requested_at
            else None
        ),
        "unfreeze_reviewers": repo.get_brand(uow, subscriber.brand_id).policy.unfreeze_reviewers,
    }


def freeze_reason_code(stored: str | None) -> str:
    """``not_me``, ``attempt_cap`` or ``other``: the stored reason as a code pages translate."""
    if stored == "not_me":
        return "not_me"
    if stored and ("attempt" in stored or "cap" in stored):
        return "attempt_cap"
    return "other"


def unfreeze_by_username(
    ctx: ServiceContext, *, msisdn: str, username: str, reason: str
) -> UnfreezeOutcome:
    """:func:`unfreeze` for the operator's command line: ``username`` names an active
    reviewer, whose brand limits the line as in the console (PermissionDenied
    REVIEWER_REQUIRED for anyone else; the two-person rule counts people, so a
    second approval must name a different reviewer)."""
    from resim.domain.security import Role

    with ctx.uow() as uow:
        staff = uow.staff.by_username(username.strip().lower())
        if staff is None or not staff.active or staff.role != Role.REVIEWER:
            raise PermissionDenied(
                "name an active reviewer: only reviewers unfreeze accounts",
                code="REVIEWER_REQUIRED",
            )
        staff_id, brand_id = staff.id, staff.brand_id
    return unfreeze(
        ctx,
        msisdn=msisdn,
        reviewer=f"staff:{staff_id}",
        reason=reason,
        scope=Scope.of_brand(brand_id),
    )
