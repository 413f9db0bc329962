"""Loss reports over the API (issue 12): block a lost or stolen phone's SIM, lift the block.

Thin: parse, call :mod:`resim.services.locks.loss`, render. Callers: an agent (who
must hold a live ID-document check on the line, recorded in the console or
with ``POST /v1/identity-checks``) and machine clients with the scope
``lines:loss``. Every call is limited to the caller's brand
(``principal.scope``): another brand's line is 404, as a missing one.

A client's word opens a report (its own app verified the user); lifting one
always needs the customer's strong verification in the body (e.g. the e-mail
code sent with ``POST .../loss-report/code`` plus the PIN), or the agent's
ID check.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from resim.domain.loss import LossChannel
from resim.entrypoints.api.access import Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.entrypoints.api.schemas import API_ERRORS, Strict, Verification
from resim.services.context import ServiceContext
from resim.services.locks import loss
from resim.services.verification.verification import Evidence

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
Caller = Annotated[Principal, allow("agent", "client:lines:loss")]

router = APIRouter(prefix="/v1/lines", tags=["loss reports"], responses=API_ERRORS)


class LossReportBody(Strict):
    reason: Literal["lost", "stolen"]


class LossView(BaseModel):
    msisdn: str
    blocked: bool = Field(description="An open loss report keeps the SIM barred")
    suspended: bool = Field(description="The core network has barred the SIM")
    report_id: str | None
    reason: str | None
    channel: str | None
    opened_at: dt.datetime | None
    state: str | None = Field(
        description="The newest report's state: open, resolved, lifted, voided"
    )
    closed_at: dt.datetime | None


class CodeSent(BaseModel):
    sent: bool = Field(description="False: a code was sent moments ago, or e-mail is not a way")


def _view(status: loss.LossStatus) -> LossView:
    return LossView(
        msisdn=status.msisdn,
        blocked=status.blocked,
        suspended=status.suspended,
        report_id=status.report_id,
        reason=status.reason,
        channel=status.channel,
        opened_at=status.opened_at,
        state=status.last_state,
        closed_at=status.closed_at,
    )


def _evidence(principal: Principal, body: Verification | None) -> Evidence:
    if principal.staff_id is not None:
        return Evidence(staff_id=principal.staff_id)  # the agent's live ID check
    if body is None:
        return Evidence()
    return Evidence(otp=body.otp, pin=body.pin, password=body.password, totp=body.totp)


@router.get("/{msisdn}/loss-report", response_model=LossView)
def read_loss_report(msisdn: str, ctx: Ctx, principal: Caller) -> LossView:
    """Whether the line's SIM is blocked for a lost or stolen phone, and the newest report."""
    return _view(loss.status(ctx, msisdn=msisdn, scope=principal.scope))


@router.post("/{msisdn}/loss-report", response_model=LossView, status_code=201)
def report_loss(
    msisdn: str, body: LossReportBody, ctx: Ctx, principal: Caller, response: Response
) -> LossView:
    """Block the SIM now. 201 with a new report; 200 with the one already open."""
    status, opened = loss.report(
        ctx,
        msisdn=msisdn,
        reason=body.reason,
        channel=LossChannel.API,
        actor=principal.actor,
        evidence=_evidence(principal, None),
        trusted=principal.kind == "client",
        source_ip=principal.source_ip,
        scope=principal.scope,
    )
    if not opened:
        response.status_code = 200
    return _view(status)


@router.post("/{msisdn}/loss-report/code", response_model=CodeSent, status_code=202)
def send_loss_code(msisdn: str, ctx: Ctx, principal: Caller) -> CodeSent:
    """E-mail the customer a code: for lifting while a report is open, else for blocking."""
    sent = loss.send_code(
        ctx,
        msisdn=msisdn,
        actor=principal.actor,
        source_ip=principal.source_ip,
        scope=principal.scope,
    )
    return CodeSent(sent=sent)


@router.post("/{msisdn}/loss-report/lift", response_model=LossView)
def lift_loss_report(msisdn: str, body: Verification, ctx: Ctx, principal: Caller) -> LossView:
    """ "I found my phone": strong verification (policy ``loss_lift_methods``) lifts the block;
    the SIM works again and the customer is told on every channel on file."""
    status = loss.lift(
        ctx,
        msisdn=msisdn,
        actor=principal.actor,
        evidence=_evidence(principal, body),
        source_ip=principal.source_ip,
        scope=principal.scope,
    )
    return _view(status)
