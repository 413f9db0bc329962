"""Console pages of the counter hand-over (issue 14): choose a card from the
store's stock or scan it, hand it over, and print the receipt.

Only agents hand over (they hold the live ID check); the receipt is read by the
agents, reviewers and admins of the request's brand (another brand's request
is 404, as on the request page). After a successful hand-over the browser goes
straight to the receipt (303), so the page never shows a stale state.
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
    ctx_of,
    from_service,
    message_of,
    page,
    posted,
    staff_page,
)
from resim.errors import ResimError
from resim.services.delivery import handover, handover_desk
from resim.services.replacement import queries

router = APIRouter(prefix="/console", include_in_schema=False)
Agent = Annotated[Caller, staff_page("agent")]
Readers = Annotated[Caller, staff_page("agent", "reviewer", "admin")]


async def _show(
    request: Request,
    caller: Caller,
    request_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    iccid: str = "",
) -> Response:
    ctx = ctx_of(request)
    scope = caller.principal.scope
    try:
        view = await run_in_threadpool(queries.get_request_view, ctx, request_id, scope=scope)
        stock = await run_in_threadpool(
            handover_desk.stock_cards, ctx, request_id=request_id, scope=scope
        )
    except ResimError as exc:
        raise from_service(exc) from None
    context: dict[str, Any] = {
        "r": view,
        "stock": stock,
        "error": error,
        "iccid": iccid,
        "awaiting": view["state"] == "approved" and view["delivery_mode"] == "pickup",
    }
    return page(request, caller, "handover.html.j2", context, status=status)


@router.get("/requests/{request_id}/handover")
async def handover_page(request: Request, request_id: str, caller: Agent) -> Response:
    return await _show(request, caller, request_id)


@router.post("/requests/{request_id}/handover")
async def hand_over(request: Request, request_id: str, caller: Agent) -> Response:
    """The ICCID typed or scanned (a barcode scanner types it and presses Enter), or
    a card chosen from the stock list; the typed one wins when both are given."""
    form = await posted(request, caller)
    typed = form.get("iccid", "").strip()[:40] or form.get("stock_iccid", "").strip()[:40]
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
    return RedirectResponse(f"/console/requests/{request_id}/receipt", status_code=303)


@router.get("/requests/{request_id}/receipt")
async def receipt(request: Request, request_id: str, caller: Readers) -> Response:
    try:
        shown = await run_in_threadpool(
            handover_desk.receipt,
            ctx_of(request),
            request_id=request_id,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        raise from_service(exc) from None
    return page(request, caller, "receipt.html.j2", {"receipt": shown})
