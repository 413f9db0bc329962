"""Use cases behind the agent console's request pages.

* :func:`create_on_behalf`: an agent opens a replacement for the customer in
  front of them (or on the phone) and verifies it with the ID-document check
  they just recorded. The request's channel is ``agent`` and its actor the
  agent ("staff:<id>"), so the brand's verification combinations for the agent
  channel, the fraud rules (SEC-07) and the agent's hourly limit (SEC-08) apply
  exactly as through the API.
* :func:`review_queue`: held requests, oldest first, with their risk reasons.
* :func:`request_trail`: the audit events of one request, oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from resim.domain.identifiers import normalize_msisdn
from resim.domain.model import Channel, Reason
from resim.domain.workflow import State
from resim.errors import PermissionDenied
from resim.services import repo
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.console.agent_actions import id_check_suffices
from resim.services.console.console import live_check
from resim.services.context import ServiceContext
from resim.services.replacement import queries, requests
from resim.services.verification.verification import channel_combos

TRAIL_LIMIT = 500


@dataclass(frozen=True)
class CreatedOnBehalf:
    request_id: str
    state: State
    fee_minor: int
    fee_currency: str | None


def create_on_behalf(
    ctx: ServiceContext,
    *,
    staff_id: str,
    msisdn: str,
    reason: str,
    target_form: str,
    scope: Scope = UNRESTRICTED,
    source_ip: str | None = None,
    session_id: str | None = None,
) -> CreatedOnBehalf:
    """Open a request on the agent channel and verify it with this agent's live ID check.

    Precondition: the agent recorded an ID-document check for the line
    (IDENTITY_CHECK_REQUIRED otherwise; nothing is written). Two transactions:
    the open (``requests.open_request``: lock, open-request and hourly-limit
    refusals) and the verification (``requests.submit_verification``, which runs
    the risk check). If the second fails, the request stays ``requested`` and
    the agent may verify it another way or cancel it.

    When the agent's check alone verifies on the agent channel (the brand's
    combinations), no one-time code is made or mailed: the customer would get a
    "your verification code" mail for a request that needs none (issue 12).
    ``session_id``: the agent's console session, recorded on the request so
    that only it shows the customer the eSIM (``agent_actions.handover_screen``).
    """
    number = normalize_msisdn(msisdn)
    now = ctx.now()
    with ctx.uow() as uow:
        line = repo.get_line_by_msisdn(uow, number, scope=scope)
        if live_check(uow, staff_id=staff_id, line_id=line.id, now=now) is None:
            raise PermissionDenied(
                "check the customer's ID document for this line first",
                code="IDENTITY_CHECK_REQUIRED",
            )
        policy = repo.get_brand(uow, line.brand_id).policy
        needs_code = not id_check_suffices(channel_combos(policy, Channel.AGENT.value))
    actor = f"staff:{staff_id}"
    opened = requests.open_request(
        ctx,
        msisdn=number,
        reason=reason,
        channel=Channel.AGENT.value,
        actor=actor,
        source_ip=source_ip,
        target_form=target_form,
        scope=scope,
        send_code=needs_code,
    )
    if session_id is not None:
        with ctx.uow() as uow:
            repo.get_request(uow, opened.id, lock=True).assign_agent_session(session_id)
            uow.commit()
    state = requests.submit_verification(
        ctx, opened.id, staff_id=staff_id, actor=actor, source_ip=source_ip, scope=scope
    )
    return CreatedOnBehalf(opened.id, state, opened.fee_minor, opened.fee_currency)


def review_queue(
    ctx: ServiceContext,
    *,
    scope: Scope = UNRESTRICTED,
    limit: int = 100,
    channel: str | None = None,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """Requests in ``scope`` waiting for a reviewer, oldest first (``queries.request_view``
    dicts), optionally only those of one ``channel`` or ``reason`` (issue 14.3; an
    operator-wide reviewer narrows to one brand with ``scope``)."""
    wanted_channel = Channel(channel) if channel is not None else None
    wanted_reason = Reason(reason) if reason is not None else None
    with ctx.uow() as uow:
        held = uow.lookups.review_queue(
            scope, channel=wanted_channel, reason=wanted_reason, limit=limit
        )
        return [queries.request_view(r) for r in held]


def next_in_queue(
    ctx: ServiceContext,
    *,
    reviewer: str,
    after: str,
    scope: Scope = UNRESTRICTED,
    channel: str | None = None,
    reason: str | None = None,
) -> str | None:
    """The id of the oldest held request (with the same filters) other than ``after``
    that ``reviewer`` may still decide: not opened by them, not already approved by
    them (issue 14.3, "approve and next"). None when the queue has nothing more."""
    for item in review_queue(ctx, scope=scope, channel=channel, reason=reason):
        if item["id"] == after or item["actor"] == reviewer:
            continue
        if any(a["by"] == reviewer for a in item["review"]["approvals"]):
            continue
        return str(item["id"])
    return None


def request_trail(
    ctx: ServiceContext, *, request_id: str, scope: Scope = UNRESTRICTED
) -> list[dict[str, Any]]:
    """The request's audit events, oldest first: the request's own, the ID checks
    recorded against it and its SIMs' events that name it. NotFound if no such request
    in ``scope``."""
    with ctx.uow() as uow:
        req = repo.get_request(uow, request_id, scope=scope)
        rows = uow.audit_log.request_trail(
            request_id=request_id,
            sim_iccids=[i for i in (req.old_iccid, req.new_iccid) if i],
            line_id=req.line_id,
            since=req.created_at - dt.timedelta(days=1),
            limit=TRAIL_LIMIT * 4,
        )
    trail = []
    for seq, at, actor, action, object_type, detail in rows:
        detail = dict(detail or {})
        if object_type == "sim" and detail.get("request") != request_id:
            continue  # the SIM's events for another request
        if object_type == "line" and detail.get("request_id") != request_id:
            continue  # look-ups and checks not tied to this request
        trail.append(
            {"seq": seq, "at": at, "actor": actor, "action": action, "detail": _shown(detail)}
        )
    return trail[:TRAIL_LIMIT]


def _shown(detail: dict[str, Any]) -> dict[str, str]:
    """Detail values as short strings (audit details never hold secrets)."""
    return {str(k): str(v)[:120] for k, v in sorted(detail.items()) if v not in (None, "", [])}
