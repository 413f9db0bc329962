"""Lines: the SIM-change lock (SEC-05) and line separation (SEC-12). Thin: parse, call, render.

A customer session names only the line it verified, staff and clients only their
brand's lines (``principal.scope``); any other line is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from resim.entrypoints.api.access import Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.entrypoints.api.schemas import API_ERRORS, Strict
from resim.services import locks, separation
from resim.services.context import ServiceContext

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
ERRORS = API_ERRORS
LockCaller = Annotated[Principal, allow("customer", "agent", "client:lines:lock")]

router = APIRouter(prefix="/v1/lines", tags=["lines"], responses=ERRORS)


class LockView(BaseModel):
    msisdn: str
    locked: bool
    since: dt.datetime | None
    unlock_effective_at: dt.datetime | None = Field(
        description="Set while an unlock is pending: the lock holds until then"
    )


class SeparationBody(Strict):
    name: str = Field(min_length=1, max_length=120, description="The survivor's name")
    email: str = Field(min_length=3, max_length=254, description="The survivor's own e-mail")
    language: str = Field(min_length=2, max_length=16, description="en, da, nb, it, fr, zh_Hans")
    alt_msisdn: str | None = Field(None, max_length=32, description="Another number for notices")
    reason_code: str = Field(description=", ".join(separation.REASON_CODES))
    note: str | None = Field(
        None, max_length=separation.NOTE_MAX, description="Free text; stored encrypted only"
    )
    eid: str | None = Field(None, description="The survivor's device EID (32 digits), if known")


class SeparationView(BaseModel):
    request_id: str
    subscriber_id: str
    state: str


def _view(status: locks.LockStatus) -> LockView:
    return LockView(
        msisdn=status.msisdn,
        locked=status.locked,
        since=status.since,
        unlock_effective_at=status.unlock_effective_at,
    )


@router.post("/{msisdn}/lock", response_model=LockView)
def lock_line(msisdn: str, ctx: Ctx, principal: LockCaller) -> LockView:
    """Turn the SIM-change lock on: free, at once, idempotent; cancels a pending unlock."""
    status = locks.lock_line(ctx, msisdn, actor=principal.actor, scope=principal.scope)
    return _view(status)


@router.get("/{msisdn}/lock", response_model=LockView)
def read_lock(msisdn: str, ctx: Ctx, principal: LockCaller) -> LockView:
    """Whether the lock refuses replacements now, and when a pending unlock takes effect."""
    status = locks.lock_status(ctx, msisdn, scope=principal.scope)
    return _view(status)


@router.post("/{msisdn}/separation", status_code=201, response_model=SeparationView)
def separate(
    msisdn: str,
    body: SeparationBody,
    ctx: Ctx,
    principal: Annotated[Principal, allow("agent")],
) -> SeparationView:
    """A survivor of abuse takes the line to an account of their own (SEC-12).

    Needs a live identity-document check by this agent on the line. The original
    account holder is not notified, now or later.
    """
    assert principal.id is not None  # a staff principal always has its id
    done = separation.separate_line(
        ctx,
        separation.SeparationSpec(
            msisdn=msisdn,
            name=body.name,
            email=body.email,
            language=body.language,
            reason_code=body.reason_code,
            alt_msisdn=body.alt_msisdn,
            note=body.note,
            eid=body.eid,
        ),
        staff_id=principal.id,
        scope=principal.scope,
    )
    return SeparationView(
        request_id=done.request_id, subscriber_id=done.subscriber_id, state=done.state.value
    )
