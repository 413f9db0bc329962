"""Who is calling: staff sign-in and sign-out, ``/me``, and the agent console (SEC-08).

Thin: parse, call one service, render. Tokens appear only in the login
response; error bodies are the usual ``{code, message}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from resim.entrypoints.api.access import SCOPES, STAFF_ROLES, Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.entrypoints.api.schemas import (
    API_ERRORS,
    IdentityCheckBody,
    IdentityCheckOut,
    Me,
    SessionOut,
    StaffLoginBody,
)
from resim.services.access import sessions, staff
from resim.services.console import console
from resim.services.context import ServiceContext

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
ERRORS = API_ERRORS
SIGNED_IN = ("customer", *STAFF_ROLES, *(f"client:{scope}" for scope in SCOPES))

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.post("/auth/staff/login", response_model=SessionOut, tags=["auth"])
def staff_login(
    body: StaffLoginBody, ctx: Ctx, principal: Annotated[Principal, allow("anyone")]
) -> SessionOut:
    """Username, password and the current TOTP code -> a staff session token (shown once)."""
    signed_in = staff.login(
        ctx,
        username=body.username,
        password=body.password,
        totp_code=body.totp,
        source_ip=principal.source_ip,
    )
    return SessionOut(
        session_token=signed_in.session.token,
        expires_at=signed_in.session.expires_at.isoformat(),
        staff_id=signed_in.staff_id,
        role=signed_in.role.value,
        display_name=signed_in.display_name,
    )


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(ctx: Ctx, principal: Annotated[Principal, allow("customer", *STAFF_ROLES)]) -> None:
    """End the session whose token authenticated this call."""
    assert principal.session_id is not None
    sessions.revoke_session(ctx, session_id=principal.session_id, actor=principal.actor)


@router.get("/auth/me", response_model=Me, tags=["auth"])
def me(principal: Annotated[Principal, allow(*SIGNED_IN)]) -> Me:
    """Who the credentials belong to (never the credentials)."""
    return Me(
        kind=principal.kind,
        id=principal.id if principal.kind != "customer" else None,
        role=principal.role,
        scopes=sorted(principal.scopes),
        request_id=principal.request_id,
        brand_id=principal.brand_id,
    )


@router.get("/lines/{msisdn}", response_model=dict[str, Any], tags=["console"])
def line(msisdn: str, ctx: Ctx, principal: Annotated[Principal, allow("agent")]) -> dict[str, Any]:
    """The line as the console shows it: redacted until this agent checked the caller's ID."""
    assert principal.id is not None
    return console.line_view(ctx, staff_id=principal.id, msisdn=msisdn, scope=principal.scope)


@router.post("/identity-checks", status_code=201, response_model=IdentityCheckOut, tags=["console"])
def identity_check(
    body: IdentityCheckBody, ctx: Ctx, principal: Annotated[Principal, allow("agent")]
) -> IdentityCheckOut:
    """Record an ID-document check (type and last 4 digits, never an image) for a line."""
    assert principal.id is not None
    recorded = console.record_identity_check(
        ctx,
        staff_id=principal.id,
        msisdn=body.msisdn,
        document_type=body.document_type,
        last_digits=body.last_digits,
        scope=principal.scope,
    )
    return IdentityCheckOut(
        id=recorded.id, line_id=recorded.line_id, expires_at=recorded.expires_at.isoformat()
    )
