"""Console pages where agents and the fraud team act (issue 12, point 4).

* an agent with a live ID check takes over or cancels a customer's pending
  request (``.../take-over``, ``.../cancel``);
* the hand-over screen an agent turns to the customer (``.../screen``): the
  eSIM's QR and manual values, for the console session that opened the
  request only, never cached (``Cache-Control: no-store``);
* a reviewer unfreezes an account from its line page (``/lines/{msisdn}/unfreeze``);
* reviewers and admins see the open alerts (``/alerts``) and acknowledge one.

Thin: parse the form, call one service, render or redirect (303). Refusals
are shown on the page the action came from, in the console's words.
"""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.adapters.qr import qr_png
from resim.entrypoints.web.common import locale_of
from resim.entrypoints.web.console.pages import (
    Caller,
    ctx_of,
    from_service,
    message_of,
    page,
    posted,
    staff_page,
)
from resim.entrypoints.web.console.routes_lines import show_line
from resim.entrypoints.web.console.routes_requests import show_request_page
from resim.errors import ResimError
from resim.services.console import agent_actions, alert_inbox
from resim.services.locks import unfreeze

router = APIRouter(prefix="/console", include_in_schema=False)
Agent = Annotated[Caller, staff_page("agent")]
Reviewer = Annotated[Caller, staff_page("reviewer")]
Overseers = Annotated[Caller, staff_page("reviewer", "admin")]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _message(request: Request, exc: ResimError) -> tuple[int, str]:
    failed = from_service(exc)
    if failed.status == 404:
        raise failed from None  # another brand's object: nothing to show
    return failed.status, message_of(locale_of(request), failed.code, failed.message)


@router.post("/requests/{request_id}/take-over")
async def take_over(request: Request, request_id: str, caller: Agent) -> Response:
    """The customer is here: verify their pending request with this agent's ID check."""
    await posted(request, caller)
    try:
        await run_in_threadpool(
            agent_actions.take_over,
            ctx_of(request),
            staff_id=caller.staff_id,
            request_id=request_id,
            session_id=caller.principal.session_id,
            scope=caller.principal.scope,
            source_ip=caller.principal.source_ip,
        )
    except ResimError as exc:
        status, message = _message(request, exc)
        return await show_request_page(request, caller, request_id, error=message, status=status)
    return _see_other(f"/console/requests/{request_id}")


@router.post("/requests/{request_id}/cancel")
async def cancel_request(request: Request, request_id: str, caller: Agent) -> Response:
    """Cancel the customer's request at their word (the agent checked their ID)."""
    form = await posted(request, caller)
    try:
        await run_in_threadpool(
            agent_actions.cancel_for_customer,
            ctx_of(request),
            staff_id=caller.staff_id,
            request_id=request_id,
            note=form.get("note", "")[:500] or None,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        status, message = _message(request, exc)
        return await show_request_page(request, caller, request_id, error=message, status=status)
    return _see_other(f"/console/requests/{request_id}")


@router.get("/requests/{request_id}/screen")
async def handover_screen(request: Request, request_id: str, caller: Agent) -> Response:
    """The eSIM for the customer's eyes: QR code, SM-DP+ address, activation code."""
    try:
        act = await run_in_threadpool(
            agent_actions.handover_screen,
            ctx_of(request),
            staff_id=caller.staff_id,
            session_id=caller.principal.session_id,
            request_id=request_id,
            scope=caller.principal.scope,
            source=caller.principal.source_ip,
        )
    except ResimError as exc:
        status, message = _message(request, exc)
        response = await show_request_page(
            request, caller, request_id, error=message, status=status
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    png = base64.b64encode(qr_png(act["qr_payload"])).decode()
    context = {
        "request_id": request_id,
        "activation": {**act, "qr_data_uri": f"data:image/png;base64,{png}"},
    }
    response = page(request, caller, "screen.html.j2", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/lines/{msisdn}/unfreeze")
async def unfreeze_account(request: Request, msisdn: str, caller: Reviewer) -> Response:
    """Approve lifting a frozen account (reason required; two reviewers if the brand says)."""
    form = await posted(request, caller)
    try:
        outcome = await run_in_threadpool(
            unfreeze.unfreeze,
            ctx_of(request),
            msisdn=msisdn,
            reviewer=caller.principal.actor,
            reason=form.get("reason", "")[:2000],
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        status, message = _message(request, exc)
        return await show_line(request, caller, msisdn, error=message, status=status)
    done = "unfrozen" if outcome.unfrozen else "approved"
    return _see_other(f"/console/lines?msisdn={quote(msisdn)}&done={done}")


@router.get("/alerts")
async def alerts(request: Request, caller: Overseers) -> Response:
    """Open (unacknowledged) alerts of the caller's brand, newest first."""
    found = await run_in_threadpool(
        alert_inbox.open_alerts, ctx_of(request), scope=caller.principal.scope
    )
    return page(request, caller, "alerts.html.j2", {"alerts": found})


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(request: Request, alert_id: str, caller: Overseers) -> Response:
    """Mark an alert as dealt with (audited); it leaves the list."""
    await posted(request, caller)
    try:
        await run_in_threadpool(
            alert_inbox.acknowledge,
            ctx_of(request),
            alert_id=alert_id[:40],
            by=caller.principal.actor,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        raise from_service(exc) from None
    return _see_other("/console/alerts")
