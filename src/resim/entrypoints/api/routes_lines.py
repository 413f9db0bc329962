"""Lines: the SIM-change lock (SEC-05), line separation (SEC-12) and the network refresh
(issue 15.9). Thin: parse, call, render.

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
from resim.services.context import ServiceContext
from resim.services.cutover import network_refresh
from resim.services.locks import locks
from resim.services.replacement import separation

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
ERRORS = API_ERRORS
LockCaller = Annotated[Principal, allow("customer", "agent", "client:lines:lock")]
RefreshCaller = Annotated[Principal, allow("agent", "client:lines:refresh")]

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


class RefreshView(BaseModel):
    id: str
    msisdn: str
    state: str = Field(description="queued, sent, nobody_serving, refused or skipped")
    requested_at: dt.datetime
    finished_at: dt.datetime | None
    code: str | None = Field(description="Why the core network refused, when it did")


def _refresh_view(status: network_refresh.RefreshStatus) -> RefreshView:
    return RefreshView(
        id=status.id,
        msisdn=status.msisdn,
        state=status.state,
        requested_at=status.requested_at,
        finished_at=status.finished_at,
        code=status.code,
    )


@router.post("/{msisdn}/network-refresh", status_code=202, response_model=RefreshView)
def request_network_refresh(msisdn: str, ctx: Ctx, principal: RefreshCaller) -> RefreshView:
    """A new SIM that will not attach: the core network drops the line's SIM in service so
    the phone registers afresh (Cancel-Location). Queued; GET the same path for the outcome."""
    status = network_refresh.request_refresh(
        ctx, msisdn, actor=principal.actor, scope=principal.scope, source=principal.source_ip
    )
    return _refresh_view(status)


@router.get("/{msisdn}/network-refresh", response_model=RefreshView | None)
def read_network_refresh(msisdn: str, ctx: Ctx, principal: RefreshCaller) -> RefreshView | None:
    """The line's newest refresh and how it ended (null: never refreshed): sent, nobody
    serving the SIM, or refused by the core network (``code`` says why)."""
    status = network_refresh.latest_refresh(ctx, msisdn, scope=principal.scope)
    return None if status is None else _refresh_view(status)
