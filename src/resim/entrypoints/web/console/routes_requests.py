"""Console pages about requests: one request, the review queue (four eyes), the
physical SIM hand-over's form and a request's audit trail (the hand-over and its
receipt: routes_handover; the dashboard: routes_dashboard).

Who sees what follows the API: a request is read by agents, reviewers and
admins (``GET /v1/requests/{id}``); only reviewers decide (``POST .../review``);
only agents hand a card over (they hold the live ID check); the audit trail
and the dashboard are for reviewers and admins. Staff of one brand see that
brand only (``caller.principal.scope``): another brand's request is 404, the
queue and the dashboard hold their brand's requests.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.domain.identifiers import mask_msisdn
from resim.entrypoints.web.common import locale_of
from resim.entrypoints.web.console.pages import (
    Caller,
    ConsolePageError,
    ctx_of,
    from_service,
    message_of,
    page,
    posted,
    staff_page,
)
from resim.entrypoints.web.console.queue_filters import (
    CHANNELS,
    REASONS,
    queue_filters,
    waited_minutes,
)
from resim.errors import ResimError
from resim.services.console import agent_actions, console_requests
from resim.services.replacement import queries
from resim.services.risk import review

router = APIRouter(prefix="/console", include_in_schema=False)
Readers = Annotated[Caller, staff_page("agent", "reviewer", "admin")]
Agent = Annotated[Caller, staff_page("agent")]
Reviewer = Annotated[Caller, staff_page("reviewer")]
Overseers = Annotated[Caller, staff_page("reviewer", "admin")]


async def _view(request: Request, caller: Caller, request_id: str) -> dict[str, Any]:
    try:
        return await run_in_threadpool(
            queries.get_request_view, ctx_of(request), request_id, scope=caller.principal.scope
        )
    except ResimError as exc:
        raise from_service(exc) from None


async def _show(
    request: Request,
    caller: Caller,
    request_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    iccid: str = "",
    note: str = "",
) -> Response:
    view = await _view(request, caller, request_id)
    mine = view["actor"] == caller.principal.actor
    offers = None
    if caller.role == "agent":
        offers = await run_in_threadpool(
            agent_actions.offers,
            ctx_of(request),
            staff_id=caller.staff_id,
            session_id=caller.principal.session_id,
            request_id=request_id,
            scope=caller.principal.scope,
        )
    context = {
        "r": view,
        "error": error,
        "iccid": iccid,
        "may_review": caller.role == "reviewer" and view["state"] == "in_review",
        "created_by_me": mine,
        "may_hand_over": caller.role == "agent"
        and view["state"] == "approved"
        and view["delivery_mode"] == "pickup",
        "agent": offers,  # issue 12: take over, cancel, the hand-over screen
        "note": note,
        "filters": queue_filters(request.query_params, caller=caller, strict=False),
        "done": request.query_params.get("done") == "approved",
    }
    return page(
        request, caller, "request.html.j2", context, status=status, zone_brand=view["brand_id"]
    )


show_request_page = _show  # for the pages of routes_agents


@router.get("/requests/{request_id}")
async def show_request(request: Request, request_id: str, caller: Readers) -> Response:
    return await _show(request, caller, request_id)


@router.post("/requests/{request_id}/review")
async def decide(request: Request, request_id: str, caller: Reviewer) -> Response:
    """Approve (and go on to the next held request), or reject with a reason and a
    confirmation. Self-review and a second approval by the same person are refused.

    A rejection without a reason, or without the "I am sure" box ticked, is 400
    with the page shown again and the reason typed kept (issue 14.3)."""
    form = await posted(request, caller)
    decision = form.get("decision", "")
    note = form.get("note", "")[:500]
    locale = locale_of(request)
    filters = queue_filters(form, caller=caller, strict=False)
    if decision not in ("approve", "approve_next", "reject"):
        message = message_of(locale, "CHOOSE_DECISION", "")
        return await _show(request, caller, request_id, error=message, status=400, note=note)
    if decision == "reject" and not note:
        message = message_of(locale, "REJECT_REASON_REQUIRED", "")
        return await _show(request, caller, request_id, error=message, status=400, note=note)
    if decision == "reject" and form.get("confirm") != "yes":
        message = message_of(locale, "REJECT_CONFIRM", "")
        return await _show(request, caller, request_id, error=message, status=400, note=note)
    try:
        await run_in_threadpool(
            review.review,
            ctx_of(request),
            request_id,
            reviewer=caller.principal.actor,
            approve_it=decision != "reject",
            note=note or None,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        failed = from_service(exc)
        message = message_of(locale, failed.code, failed.message)
        return await _show(
            request, caller, request_id, error=message, status=failed.status, note=note
        )
    if decision == "approve_next":
        following = await run_in_threadpool(
            console_requests.next_in_queue,
            ctx_of(request),
            reviewer=caller.principal.actor,
            after=request_id,
            scope=filters.scope(caller),
            channel=filters.channel,
            reason=filters.reason,
        )
        if following is None:
            return RedirectResponse(filters.link("/console/queue", done="empty"), status_code=303)
        return RedirectResponse(
            filters.link(f"/console/requests/{following}", done="approved"), status_code=303
        )
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.get("/queue")
async def queue(request: Request, caller: Reviewer, done: str = "") -> Response:
    """Held requests, oldest first, with brand, masked number, channel, how long each
    has waited, the rules that fired and the approvals so far; filters by brand
    (operator-wide reviewers), channel and reason. A bad filter is the error page."""
    filters = queue_filters(request.query_params, caller=caller)
    held = await run_in_threadpool(
        console_requests.review_queue,
        ctx_of(request),
        scope=filters.scope(caller),
        channel=filters.channel,
        reason=filters.reason,
    )
    me = caller.principal.actor
    now = ctx_of(request).now()
    for item in held:
        item["created_by_me"] = item["actor"] == me
        item["approved_by_me"] = any(a["by"] == me for a in item["review"]["approvals"])
        item["masked"] = mask_msisdn(item["msisdn"])
        item["waiting_minutes"] = waited_minutes(item, now)
    context = {
        "held": held,
        "filters": filters,
        "operator_wide": caller.principal.scope.brand_id is None,
        "brands": sorted((caller.names.brands if caller.names else {}).items(), key=_by_name),
        "channels": CHANNELS,
        "reasons": REASONS,
        "done": done if done == "empty" else None,
    }
    return page(request, caller, "queue.html.j2", context)


@router.get("/requests/{request_id}/audit")
async def audit_trail(request: Request, request_id: str, caller: Overseers) -> Response:
    try:
        trail = await run_in_threadpool(
            console_requests.request_trail,
            ctx_of(request),
            request_id=request_id,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        raise from_service(exc) from None
    context = {"request_id": request_id, "trail": trail}
    view = await _view(request, caller, request_id)  # the request's brand: its time zone
    return page(request, caller, "audit.html.j2", context, zone_brand=view["brand_id"])


def _by_name(item: tuple[str, tuple[str, str]]) -> str:
    return item[1][0]


__all__ = ["ConsolePageError", "router"]
