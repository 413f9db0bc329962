"""Step-up verification and unlocking a line's SIM-change lock (thin: parse, call, render)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from resim.entrypoints.api.access import Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.entrypoints.api.schemas import API_ERRORS, StateOnly, Strict
from resim.services.context import ServiceContext
from resim.services.locks import unlock
from resim.services.verification import verify_request
from resim.services.verification.verification import Evidence

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
ERRORS = API_ERRORS

router = APIRouter(prefix="/v1", responses=ERRORS)


class StepUpEvidence(Strict):
    """One of the stronger methods the risk check asked for (an agent's document check
    comes from their session)."""

    totp: str | None = Field(None, min_length=6, max_length=8, pattern=r"^[0-9]+$")


class UnlockEvidence(Strict):
    otp: str | None = Field(None, min_length=4, max_length=12, pattern=r"^\s*[0-9]+\s*$")
    pin: str | None = Field(None, min_length=4, max_length=12)
    password: str | None = Field(None, min_length=1, max_length=200)
    totp: str | None = Field(None, min_length=6, max_length=8, pattern=r"^[0-9]+$")


class UnlockStartedView(BaseModel):
    msisdn: str
    verification_methods: list[list[str]]
    code_sent: bool


class UnlockScheduledView(BaseModel):
    msisdn: str
    effective_at: dt.datetime


def _staff_id(principal: Principal) -> str | None:
    return principal.id if principal.kind == "staff" else None


def _actor(principal: Principal) -> str:
    return principal.actor if principal.kind in ("staff", "client") else "customer"


@router.post("/requests/{request_id}/step-up", response_model=StateOnly, tags=["requests"])
def step_up(
    request_id: str,
    body: StepUpEvidence,
    ctx: Ctx,
    principal: Annotated[Principal, allow("anyone")],
) -> StateOnly:
    """Prove a stronger method (TOTP, or an agent's document check) the risk check asked for."""
    state = verify_request.submit_step_up(
        ctx,
        request_id,
        evidence=Evidence(totp=body.totp, staff_id=_staff_id(principal)),
        actor=_actor(principal),
        source_ip=principal.source_ip,
        scope=principal.scope,
    )
    return StateOnly(id=request_id, state=state.value)


@router.post(
    "/lines/{msisdn}/unlock", status_code=202, response_model=UnlockStartedView, tags=["lines"]
)
def start_unlock(
    msisdn: str,
    ctx: Ctx,
    principal: Annotated[Principal, allow("anyone", "agent", "client:lines:lock")],
) -> UnlockStartedView:
    """Start turning the SIM-change lock off: a code goes to the e-mail address on file."""
    started = unlock.start_unlock(
        ctx, msisdn, actor=_actor(principal), source_ip=principal.source_ip, scope=principal.scope
    )
    return UnlockStartedView(
        msisdn=started.msisdn_masked,
        verification_methods=[list(c) for c in started.methods],
        code_sent=started.code_sent,
    )


@router.post("/lines/{msisdn}/unlock/confirm", response_model=UnlockScheduledView, tags=["lines"])
def confirm_unlock(
    msisdn: str,
    body: UnlockEvidence,
    ctx: Ctx,
    principal: Annotated[Principal, allow("anyone", "agent", "client:lines:lock")],
) -> UnlockScheduledView:
    """Verify strongly; the lock goes off after the brand's delay, and the customer is told."""
    evidence = Evidence(
        otp=body.otp,
        pin=body.pin,
        password=body.password,
        totp=body.totp,
        staff_id=_staff_id(principal),
    )
    scheduled = unlock.confirm_unlock(
        ctx,
        msisdn,
        evidence=evidence,
        actor=_actor(principal),
        source_ip=principal.source_ip,
        scope=principal.scope,
    )
    return UnlockScheduledView(msisdn=scheduled.msisdn_masked, effective_at=scheduled.effective_at)
