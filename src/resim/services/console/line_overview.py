"""What the console's line overview shows before an agent acts (issue 14).

:func:`overview` runs inside :func:`console.line_view`'s unit of work and only
reads. It gathers the facts an agent needs on one screen: the current SIM
(form, masked ICCID), the line's state, the last SIM changes, when the
contact details last changed, the fee a replacement would cost now (the
brand's fee policy, in the brand's currency), the risk rules that would fire
if the agent opened a request now, and which actions are allowed (with the
reason code when not). Nothing here is personal data beyond what the masked
view already shows; ICCIDs of the customer's SIMs are masked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resim.domain.model import (
    Channel,
    DeliveryMode,
    Line,
    LineStatus,
    Reason,
    ReplacementRequest,
    SimForm,
    Subscriber,
)
from resim.domain.policy import BrandPolicy
from resim.domain.risk import assess
from resim.domain.workflow import State
from resim.services import repo
from resim.services.replacement.requests import _fee_due
from resim.services.risk import risk_facts
from resim.services.unit_of_work import UnitOfWork

SIM_CHANGES_SHOWN = 5


def mask_iccid(iccid: str | None) -> str | None:
    """ "8945001234567890123" -> "8945 … 0123": the issuer prefix and the last 4 digits."""
    if not iccid:
        return None
    return f"{iccid[:4]} … {iccid[-4:]}"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _sim_changes(uow: UnitOfWork, line_id: str) -> list[dict[str, Any]]:
    rows = uow.lookups.recent_sim_changes(line_id, limit=SIM_CHANGES_SHOWN)
    return [
        {"at": _iso(at), "old_iccid": mask_iccid(old), "new_iccid": mask_iccid(new)}
        for at, old, new in rows
    ]


def _signals(
    uow: UnitOfWork,
    *,
    line: Line,
    subscriber: Subscriber,
    policy: BrandPolicy,
    staff_id: str,
    now: dt.datetime,
) -> list[dict[str, str]]:
    """The rules that would fire on a request this agent opened now (a preview: the
    request itself is assessed again when it is verified)."""
    probe = ReplacementRequest(
        id="overview-preview",
        line_id=line.id,
        brand_id=line.brand_id,
        subscriber_id=subscriber.id,
        msisdn=line.msisdn,
        reason=Reason.LOST,
        channel=Channel.AGENT,
        actor=f"staff:{staff_id}",
        created_at=now,
        old_iccid=None,
    )
    facts = risk_facts.gather(
        uow, request=probe, line=line, subscriber=subscriber, policy=policy, now=now
    )
    return [f.as_dict() for f in assess(facts, policy).findings]


def _replace_refusal(
    *,
    line: Line,
    subscriber: Subscriber,
    open_request: ReplacementRequest | None,
    verified: bool,
    now: dt.datetime,
) -> str | None:
    """Why opening a replacement is not offered now (a code), or None if it is."""
    if line.awaiting_sim:
        return "LINE_HAS_NO_SIM"
    if line.status != LineStatus.ACTIVE:
        return "LINE_NOT_ACTIVE"
    if subscriber.replacements_frozen_at is not None:
        return "ACCOUNT_FROZEN"
    if line.is_locked(now):
        return "LINE_LOCKED"
    if open_request is not None:
        return "REQUEST_ALREADY_OPEN"
    if not verified:
        return "IDENTITY_CHECK_REQUIRED"
    return None


def overview(
    uow: UnitOfWork,
    *,
    line: Line,
    subscriber: Subscriber,
    open_request: ReplacementRequest | None,
    staff_id: str,
    verified: bool,
    now: dt.datetime,
) -> dict[str, Any]:
    """The overview's facts for ``line`` (read-only, in the caller's unit of work)."""
    brand = repo.get_brand(uow, line.brand_id)
    policy = brand.policy
    sim = repo.bound_sim(uow, line.id)
    fee = _fee_due(
        uow,
        line.id,
        now,
        policy.fee.amount_minor,
        policy.fee.free_per_window,
        policy.fee.window_days,
    )
    refusal = _replace_refusal(
        line=line,
        subscriber=subscriber,
        open_request=open_request,
        verified=verified,
        now=now,
    )
    handover = (
        open_request is not None
        and open_request.state == State.APPROVED
        and open_request.target_form == SimForm.PHYSICAL
        and open_request.delivery == DeliveryMode.PICKUP
    )
    return {
        "timezone": brand.timezone,
        "sim": (
            {
                "form": sim.form.value,
                "iccid": mask_iccid(sim.iccid),
                "state": sim.state.value,
            }
            if sim
            else None
        ),
        "line_status": line.status.value,
        "awaiting_sim": line.awaiting_sim,
        "lock_changed_at": _iso(line.lock_changed_at),
        "sim_changes": _sim_changes(uow, line.id),
        "contact_changes": {
            "email": _iso(subscriber.email_changed_at),
            "address": _iso(subscriber.address_changed_at),
            "password": _iso(subscriber.password_changed_at),
        },
        "fee_now": {"amount_minor": fee, "currency": brand.currency},
        "courier_fee_minor": policy.courier_fee_minor,
        "signals": (
            _signals(
                uow,
                line=line,
                subscriber=subscriber,
                policy=policy,
                staff_id=staff_id,
                now=now,
            )
            if not line.awaiting_sim
            else []
        ),
        "may_replace": refusal is None,
        "replace_refusal": refusal,
        "may_hand_over": handover,
    }
