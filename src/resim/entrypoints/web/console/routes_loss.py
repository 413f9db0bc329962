"""Console: block a lost or stolen phone's SIM from the line page, and lift the block
(issue 12). Both need this agent's recorded ID-document check on the line (it is
strong verification for lifting). Thin: parse the form, call
:mod:`resim.services.locks.loss`, redirect to the line page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.domain.loss import LossChannel
from resim.entrypoints.web.console.pages import (
    Caller,
    ConsolePageError,
    ctx_of,
    from_service,
    posted,
    staff_page,
)
from resim.errors import ResimError, VerificationFailed
from resim.services.context import ServiceContext
from resim.services.locks import loss
from resim.services.verification.verification import Evidence

router = APIRouter(prefix="/console", include_in_schema=False)
Agent = Annotated[Caller, staff_page("agent")]


def _line_url(msisdn: str, note: str = "") -> str:
    return f"/console/lines?msisdn={quote(msisdn)}{note}"


async def _act(request: Request, msisdn: str, caller: Caller, *, lift: bool) -> Response:
    form = await posted(request, caller)
    ctx = ctx_of(request)
    evidence = Evidence(staff_id=caller.staff_id)  # this agent's live ID check
    actor = caller.principal.actor

    def run() -> None:
        if lift:
            loss.lift(
                ctx,
                msisdn=msisdn,
                actor=actor,
                evidence=evidence,
                source_ip=caller.principal.source_ip,
                scope=caller.principal.scope,
            )
        else:
            loss.report(
                ctx,
                msisdn=msisdn,
                reason=form.get("reason", ""),
                channel=LossChannel.AGENT,
                actor=actor,
                evidence=evidence,
                source_ip=caller.principal.source_ip,
                scope=caller.principal.scope,
            )

    try:
        await run_in_threadpool(run)
    except VerificationFailed:
        raise ConsolePageError(400, "IDENTITY_CHECK_REQUIRED") from None  # no live ID check
    except ResimError as exc:
        raise from_service(exc) from None
    return RedirectResponse(_line_url(msisdn), status_code=303)


@router.post("/lines/{msisdn}/loss-report")
async def block_sim(request: Request, msisdn: str, caller: Agent) -> Response:
    """Block the SIM now (lost or stolen phone), after this agent checked the ID."""
    return await _act(request, msisdn, caller, lift=False)


def loss_of(ctx: ServiceContext, msisdn: str, caller: Caller) -> loss.LossStatus | None:
    """The line's loss report for the line page (None when the line is not found)."""
    try:
        return loss.status(ctx, msisdn=msisdn, scope=caller.principal.scope)
    except ResimError:
        return None


@router.post("/lines/{msisdn}/loss-report/lift")
async def lift_block(request: Request, msisdn: str, caller: Agent) -> Response:
    """The customer found the phone: the agent's ID check is the strong verification."""
    return await _act(request, msisdn, caller, lift=True)
