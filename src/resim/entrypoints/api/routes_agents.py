"""Agents and the fraud team act (issue 12, point 4). Thin: parse, call one service, render.

* ``POST /v1/requests/{id}/take-over``: an agent with a live ID check on the
  line takes over the customer's pending request (:mod:`resim.services.console.agent_actions`);
* ``POST /v1/lines/{msisdn}/unfreeze``: a reviewer approves unfreezing the
  account (reason required; two reviewers where the brand says so);
* ``GET /v1/alerts``: open alerts of the caller's brand; ``POST
  /v1/alerts/{id}/acknowledge`` marks one as dealt with.

Another brand's request or line is 404 (``principal.scope``), nothing changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from resim.entrypoints.api.access import Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.entrypoints.api.schemas import API_ERRORS, StateOnly, Strict
from resim.services.console import agent_actions, alert_inbox
from resim.services.context import ServiceContext
from resim.services.locks import unfreeze

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
router = APIRouter(prefix="/v1", tags=["agents"], responses=API_ERRORS)


class UnfreezeBody(Strict):
    reason: str = Field(
        min_length=1, max_length=unfreeze.REASON_MAX, description="Why; kept in the audit log"
    )


class UnfreezeResult(BaseModel):
    unfrozen: bool = Field(description="False: recorded, a second reviewer must approve")
    approvals: int
    approvals_needed: int


class AlertView(BaseModel):
    id: str
    at: dt.datetime
    kind: str
    subject_type: str
    subject_id: str
    msisdn: str | None
    detail: dict[str, str]


@router.post("/requests/{request_id}/take-over", response_model=StateOnly, tags=["requests"])
def take_over(
    request_id: str, ctx: Ctx, principal: Annotated[Principal, allow("agent")]
) -> StateOnly:
    """Verify the customer's pending request with this agent's live ID-document check.

    The request moves to the agent channel; the customer's one-time code stops
    working and the customer is told. 403 IDENTITY_CHECK_REQUIRED without a live
    check; 409 NOT_PENDING or 403 ID_CHECK_NOT_ENOUGH when it cannot be taken over.
    """
    assert principal.id is not None
    state = agent_actions.take_over(
        ctx,
        staff_id=principal.id,
        request_id=request_id,
        session_id=principal.session_id,
        scope=principal.scope,
        source_ip=principal.source_ip,
    )
    return StateOnly(id=request_id, state=state.value)


@router.post("/lines/{msisdn}/unfreeze", response_model=UnfreezeResult, tags=["lines"])
def unfreeze_account(
    msisdn: str,
    body: UnfreezeBody,
    ctx: Ctx,
    principal: Annotated[Principal, allow("reviewer")],
) -> UnfreezeResult:
    """Approve lifting the freeze on the line's account (after "not me" or the attempt cap).

    With the brand's ``unfreeze_reviewers`` = 2 the first approval is recorded
    and a second, different reviewer lifts it (403 SAME_REVIEWER for the same
    one). 409 NOT_FROZEN when nothing is frozen; 422 for an empty reason.
    """
    outcome = unfreeze.unfreeze(
        ctx, msisdn=msisdn, reviewer=principal.actor, reason=body.reason, scope=principal.scope
    )
    return UnfreezeResult(
        unfrozen=outcome.unfrozen,
        approvals=outcome.approvals,
        approvals_needed=outcome.approvals_needed,
    )


@router.get("/alerts", response_model=list[AlertView], tags=["alerts"])
def alerts(
    ctx: Ctx,
    principal: Annotated[Principal, allow("reviewer", "admin")],
    limit: Annotated[int, Query(ge=1, le=alert_inbox.ALERT_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    """Open (unacknowledged) alerts of the caller's brand, newest first."""
    return alert_inbox.open_alerts(ctx, scope=principal.scope, limit=limit)


@router.post("/alerts/{alert_id}/acknowledge", status_code=204, tags=["alerts"])
def acknowledge_alert(
    alert_id: str, ctx: Ctx, principal: Annotated[Principal, allow("reviewer", "admin")]
) -> Response:
    """Mark an open alert of the caller's brand as dealt with (audited). 404 otherwise."""
    alert_inbox.acknowledge(ctx, alert_id=alert_id[:40], by=principal.actor, scope=principal.scope)
    return Response(status_code=204)
