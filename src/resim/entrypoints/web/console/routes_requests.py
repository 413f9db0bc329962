"""Console pages about requests: one request, the review queue (four eyes), the
physical SIM hand-over and a request's audit trail (the dashboard: routes_dashboard).

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
from resim.errors import ResimError
from resim.services import agent_actions, console_requests, handover, queries, review

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
    }
    return page(request, caller, "request.html.j2", context, status=status)


show_request_page = _show  # for the pages of routes_agents


@router.get("/requests/{request_id}")
async def show_request(request: Request, request_id: str, caller: Readers) -> Response:
    return await _show(request, caller, request_id)


@router.post("/requests/{request_id}/review")
async def decide(request: Request, request_id: str, caller: Reviewer) -> Response:
    """Approve or reject; self-review and a second approval by the same person are refused."""
    form = await posted(request, caller)
    decision = form.get("decision", "")
    if decision not in ("approve", "reject"):
        message = message_of(locale_of(request), "CHOOSE_DECISION", "")
        return await _show(request, caller, request_id, error=message, status=400)
    try:
        await run_in_threadpool(
            review.review,
            ctx_of(request),
            request_id,
            reviewer=caller.principal.actor,
            approve_it=decision == "approve",
            note=form.get("note", "")[:500] or None,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        failed = from_service(exc)
        message = message_of(locale_of(request), failed.code, failed.message)
        return await _show(request, caller, request_id, error=message, status=failed.status)
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.post("/requests/{request_id}/handover")
async def hand_over(request: Request, request_id: str, caller: Agent) -> Response:
    """The ICCID typed or scanned (a barcode scanner types it and presses Enter)."""
    form = await posted(request, caller)
    typed = form.get("iccid", "")[:40]
    try:
        await run_in_threadpool(
            handover.hand_over,
            ctx_of(request),
            staff_id=caller.staff_id,
            request_id=request_id,
            iccid=typed,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        failed = from_service(exc)
        if failed.status == 404 and failed.code == "REQUEST_NOT_FOUND":
            raise failed from None
        message = message_of(locale_of(request), failed.code, failed.message)
        return await _show(
            request, caller, request_id, error=message, status=failed.status, iccid=typed
        )
    return RedirectResponse(f"/console/requests/{request_id}", status_code=303)


@router.get("/queue")
async def queue(request: Request, caller: Reviewer) -> Response:
    """Held requests, oldest first, with the rules that fired."""
    held = await run_in_threadpool(
        console_requests.review_queue, ctx_of(request), scope=caller.principal.scope
    )
    me = caller.principal.actor
    for item in held:
        item["created_by_me"] = item["actor"] == me
        item["approved_by_me"] = any(a["by"] == me for a in item["review"]["approvals"])
    return page(request, caller, "queue.html.j2", {"held": held})


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
    return page(request, caller, "audit.html.j2", context)


__all__ = ["ConsolePageError", "router"]
