"""The BSS REST API for replacement requests (thin: parse, call one service, render).

Every route hands the services the caller's ``principal.scope``: another brand's
request (or, for a customer session, any request but its own) is 404 and lists
hold the caller's brand only (DESIGN.md, "Tenancy").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from resim.adapters.qr import qr_png, qr_svg
from resim.domain.workflow import State
from resim.entrypoints.api.access import Principal, allow
from resim.entrypoints.api.deps import get_ctx
from resim.entrypoints.api.schemas import (
    API_ERRORS,
    Activation,
    Cancellation,
    CreatedRequest,
    CreateRequest,
    OpenAccepted,
    Problem,
    RequestView,
    Review,
    SimChangeRecord,
    StateOnly,
    Verification,
    VerificationResult,
)
from resim.errors import InvalidInput, NotFound, PermissionDenied, Refused
from resim.services.console import console
from resim.services.context import ServiceContext
from resim.services.locks import locks
from resim.services.notifications.notify import request_ref
from resim.services.replacement import cancel, open_spec, queries, reissue, requests
from resim.services.risk import review
from resim.services.verification import verify_request

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
ERRORS = API_ERRORS
OPEN_ACCEPTED = OpenAccepted(
    status="accepted",
    message="If this number can have its SIM replaced, a one-time code and a link to"
    " continue were sent to the e-mail address on file.",
)

router = APIRouter(prefix="/v1", tags=["requests"], responses=ERRORS)

READERS = ("agent", "reviewer", "admin", "client:requests:read")
# Who may read a request's activation code: the customer who verified it, the
# operator's own app, and an agent who checked the customer's ID for that line
# and did not open or verify the request (issue 13).
ACTIVATION = ("customer", "agent", "client:activation:read")


def _rendered(model: BaseModel, status_code: int = 200) -> JSONResponse:
    """``model`` as the route's JSON answer, rendered here: returned as a model, FastAPI
    would validate it again against the ``response_model`` (the same class) in a
    thread-pool hop. Same body, same status; the OpenAPI document still names the model."""
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def _actor(principal: Principal) -> str:
    """Staff and clients are named by their credentials; everyone else is the customer."""
    return principal.actor if principal.kind in ("staff", "client") else "customer"


def _activation_view(
    ctx: ServiceContext, principal: Principal, request_id: str, *, via: str
) -> dict[str, Any]:
    """The activation code for a caller in whose scope the request is; an agent also
    needs a live identity check on its line and must not have opened or verified it.
    The read is audited with the caller and ``via`` (the route)."""
    if principal.kind == "staff":
        assert principal.id is not None
        console.refuse_own_activation(
            ctx, staff_id=principal.id, request_id=request_id, scope=principal.scope
        )
        console.require_live_check_for_request(
            ctx, staff_id=principal.id, request_id=request_id, scope=principal.scope
        )
    return queries.activation_view(
        ctx,
        request_id,
        scope=principal.scope,
        reader=principal.reader,
        via=via,
        source=principal.source_ip,
    )


@router.post(
    "/requests",
    status_code=201,
    response_model=CreatedRequest,
    responses={
        202: {
            "model": OpenAccepted,
            "description": "Callers without staff or client credentials: the same answer"
            " whatever the number (see the operation's description)",
        }
    },
)
def create_request(
    body: CreateRequest, ctx: Ctx, principal: Annotated[Principal, allow("anyone")]
) -> JSONResponse:
    """Open a replacement request; the one-time code goes to the e-mail address on file.

    Anyone may ask (the customer proves identity by verifying); the request's
    actor is the caller's credential, and only staff may use the agent channel.

    Staff and machine clients get the request (201) or the reason it was
    refused. Anyone else (no credentials, or a customer session) gets 202 and
    the same body whatever happened: an unknown number, a locked line, a frozen
    account, a request already open, and a request opened all look alike,
    and the factors on file are not listed. The customer continues from the
    e-mail (the code, and the request's page that takes it). Only malformed
    input (422) is told apart, as it says nothing about the number.
    ``device_id`` and ``country`` are taken from staff and API clients only
    (422 ORIGIN_NOT_ACCEPTED otherwise); see docs/security.md, SEC-07.
    """
    trusted = principal.kind in ("staff", "client")
    if body.channel == "agent" and principal.kind != "staff":
        raise PermissionDenied("only staff open requests on the agent channel")
    if not trusted and (body.device_id is not None or body.country is not None):
        # SEC-07: a caller without credentials could name a device or country the
        # customer is known by; resim derives them itself (source address).
        raise InvalidInput(
            "device_id and country are accepted only from staff and API clients;"
            " for a request without credentials resim derives them itself",
            code="ORIGIN_NOT_ACCEPTED",
        )
    if body.lock_override and not trusted:
        raise Refused(
            "only an agent in a store or on the hotline may override a SIM-change lock",
            code="LOCK_OVERRIDE_AGENT_ONLY",
        )
    spec = open_spec.parse_open(
        msisdn=body.msisdn,
        reason=body.reason.value,
        channel=body.channel,
        eid=body.eid,
        device_id=body.device_id,
        country=body.country,
    )
    if not trusted:
        requests.open_quietly(
            ctx,
            spec,
            actor=_actor(principal),
            source_ip=principal.source_ip,
            scope=principal.scope,
        )
        return JSONResponse(OPEN_ACCEPTED.model_dump(), status_code=202)
    opened = requests.open_parsed(
        ctx,
        spec,
        actor=_actor(principal),
        source_ip=principal.source_ip,
        lock_override=locks.LockOverride(body.justification or "") if body.lock_override else None,
        scope=principal.scope,
    )
    created = CreatedRequest(
        id=opened.id,
        ref=request_ref(opened.id),
        state=opened.state.value,
        verification_methods=[list(c) for c in opened.verification_methods],
        fee={"amount_minor": opened.fee_minor, "currency": opened.fee_currency},
    )
    return _rendered(created, 201)


@router.get("/requests", response_model=list[RequestView])
def list_requests(
    ctx: Ctx,
    principal: Annotated[Principal, allow(*READERS)],
    state: State | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Requests of the caller's brand, newest first; with state=in_review, the review
    queue oldest first."""
    return queries.list_requests(
        ctx,
        scope=principal.scope,
        state=state.value if state else None,
        limit=limit,
        offset=offset,
    )


@router.get("/requests/{request_id}", response_model=RequestView)
def read_request(
    request_id: str, ctx: Ctx, principal: Annotated[Principal, allow("customer", *READERS)]
) -> dict[str, Any]:
    """Where the request is and what happens next. Never contains a secret."""
    return queries.get_request_view(ctx, request_id, scope=principal.scope)


@router.post(
    "/requests/{request_id}/verification",
    response_model=VerificationResult,
    responses={429: {"model": Problem}},
)
def verify(
    request_id: str,
    body: Verification,
    ctx: Ctx,
    principal: Annotated[Principal, allow("anyone")],
) -> VerificationResult | JSONResponse:
    """Submit evidence for one of the offered combinations (code + PIN, password, TOTP...).

    An agent's live identity-document check on the line counts as ``id_document``.
    Failures are counted per request, account, agent and source address (429 when
    blocked). A customer (no staff or client credentials) gets ``session_token``:
    a bearer session for this request only (read it, its activation code, cancel
    or reissue it), valid for minutes. It is shown once.
    """
    if principal.kind in ("staff", "client"):
        state = requests.submit_verification(
            ctx,
            request_id,
            otp=body.otp,
            pin=body.pin,
            password=body.password,
            totp=body.totp,
            staff_id=principal.id if principal.kind == "staff" else None,
            actor=_actor(principal),
            source_ip=principal.source_ip,
            scope=principal.scope,
        )
        return VerificationResult(id=request_id, state=state.value)
    # The customer's session is issued in the verification's own transaction.
    state, issued = verify_request.verify_and_issue_session(
        ctx,
        request_id,
        otp=body.otp,
        pin=body.pin,
        password=body.password,
        totp=body.totp,
        actor=_actor(principal),
        source_ip=principal.source_ip,
        scope=principal.scope,
    )
    result = VerificationResult(
        id=request_id,
        state=state.value,
        session_token=issued.token,
        session_expires_at=issued.expires_at.isoformat(),
    )
    return _rendered(result)


@router.post("/requests/{request_id}/code", status_code=202, response_model=StateOnly)
def resend_code(
    request_id: str, ctx: Ctx, principal: Annotated[Principal, allow("anyone")]
) -> StateOnly:
    """Send a fresh one-time code (the old one stops working)."""
    requests.resend_code(ctx, request_id, scope=principal.scope)
    return StateOnly(id=request_id, state=State.REQUESTED.value)


@router.post("/requests/{request_id}/cancel", response_model=StateOnly)
def cancel_request(
    request_id: str,
    body: Cancellation,
    ctx: Ctx,
    principal: Annotated[Principal, allow("customer", "agent", "client:requests:write")],
) -> StateOnly:
    state = cancel.cancel(
        ctx, request_id, actor=_actor(principal), note=body.note, scope=principal.scope
    )
    return StateOnly(id=request_id, state=state.value)


@router.post("/requests/{request_id}/review", response_model=StateOnly)
def review_request(
    request_id: str, body: Review, ctx: Ctx, principal: Annotated[Principal, allow("reviewer")]
) -> StateOnly:
    """A reviewer approves or rejects a held request (never one they created).

    The reviewer is the signed-in staff member; ``reviewer`` in the body is ignored.
    High-risk and lock-override requests need two distinct approvers (four eyes).
    """
    state = review.review(
        ctx,
        request_id,
        reviewer=principal.actor,
        approve_it=body.decision == "approve",
        note=body.note,
        scope=principal.scope,
    )
    return StateOnly(id=request_id, state=state.value)


@router.post("/requests/{request_id}/reissue", response_model=StateOnly)
def reissue_request(
    request_id: str,
    body: Cancellation,
    ctx: Ctx,
    principal: Annotated[Principal, allow("customer", "agent", "client:requests:write")],
) -> StateOnly:
    """The download failed on the device: withdraw that profile and order a fresh one."""
    state = reissue.reissue(ctx, request_id, actor=_actor(principal), scope=principal.scope)
    return StateOnly(id=request_id, state=state.value)


@router.get("/requests/{request_id}/activation", response_model=Activation)
def activation(
    request_id: str,
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, allow(*ACTIVATION)],
) -> JSONResponse:
    """The activation code (secret): QR payload, one-tap iOS link, address and matching ID."""
    view = _activation_view(ctx, principal, request_id, via="api")
    base = str(request.url_for("activation_qr", request_id=request_id, fmt="png"))
    return _rendered(Activation(**view, qr_png_url=base, qr_svg_url=base[: -len("png")] + "svg"))


@router.get(
    "/requests/{request_id}/activation/qr.{fmt}",
    name="activation_qr",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
async def activation_qr(
    request_id: str, fmt: str, ctx: Ctx, principal: Annotated[Principal, allow(*ACTIVATION)]
) -> Response:
    if fmt not in ("png", "svg"):
        raise NotFound("the QR code is served as qr.png or qr.svg", code="NOT_FOUND")
    view = await run_in_threadpool(
        lambda: _activation_view(ctx, principal, request_id, via=f"qr.{fmt}")
    )
    if fmt == "png":
        return Response(
            qr_png(view["qr_payload"]),
            media_type="image/png",
            headers={"Cache-Control": "no-store"},
        )
    return Response(
        qr_svg(view["qr_payload"]),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/sim-changes", response_model=list[SimChangeRecord], tags=["sim-changes"])
def sim_changes(
    ctx: Ctx,
    principal: Annotated[Principal, allow("reviewer", "admin", "client:sim-changes:read")],
    msisdn: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """SIM changes of the caller's brand's lines, newest first."""
    return queries.sim_changes(ctx, scope=principal.scope, msisdn=msisdn, limit=limit)
