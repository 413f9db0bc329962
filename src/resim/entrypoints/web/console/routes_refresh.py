"""Console: a network refresh from the line page (issue 15.9), for an agent who has
checked the caller's ID: the core network drops the line's SIM so the phone attaches
afresh. Thin: call :mod:`resim.services.cutover.network_refresh`, redirect to the line page,
which shows the last refresh and its outcome."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.entrypoints.web.console.pages import Caller, ctx_of, from_service, posted, staff_page
from resim.errors import ResimError
from resim.services.context import ServiceContext
from resim.services.cutover import network_refresh

router = APIRouter(prefix="/console", include_in_schema=False)
Agent = Annotated[Caller, staff_page("agent")]


@router.post("/lines/{msisdn}/network-refresh")
async def refresh_network(request: Request, msisdn: str, caller: Agent) -> Response:
    """Queue one refresh (audited; a second while one waits is the same one)."""
    await posted(request, caller)  # the form's CSRF token
    try:
        await run_in_threadpool(
            network_refresh.request_refresh,
            ctx_of(request),
            msisdn,
            actor=caller.principal.actor,
            scope=caller.principal.scope,
            source=caller.principal.source_ip,
        )
    except ResimError as exc:
        raise from_service(exc) from None
    return RedirectResponse(f"/console/lines?msisdn={quote(msisdn)}&done=refresh", status_code=303)


def refresh_of(
    ctx: ServiceContext, msisdn: str, caller: Caller
) -> network_refresh.RefreshStatus | None:
    """The line's last refresh for the line page (agents only; None when none or
    when the number is not a line this caller may see)."""
    if caller.role != "agent":
        return None
    try:
        return network_refresh.latest_refresh(ctx, msisdn, scope=caller.principal.scope)
    except ResimError:
        return None
