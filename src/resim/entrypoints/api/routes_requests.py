"""The BSS REST API for replacement requests (thin: parse, call one service, render)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from resim.adapters.qr import qr_png, qr_svg
from resim.domain.workflow import State
from resim.entrypoints.api.deps import get_ctx, require_api_token
from resim.entrypoints.api.schemas import (
    Activation,
    Cancellation,
    CreatedRequest,
    CreateRequest,
    Problem,
    RequestView,
    Review,
    SimChangeRecord,
    StateOnly,
    Verification,
)
from resim.errors import NotFound
from resim.services import cancel, queries, reissue, requests, review
from resim.services.context import ServiceContext
from resim.services.notify import request_ref

Ctx = Annotated[ServiceContext, Depends(get_ctx)]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": Problem} for s in (400, 401, 403, 404, 409, 422, 503)
}

router = APIRouter(
    prefix="/v1", tags=["requests"], dependencies=[Depends(require_api_token)], responses=ERRORS
)


@router.post("/requests", status_code=201, response_model=CreatedRequest)
def create_request(body: CreateRequest, ctx: Ctx) -> CreatedRequest:
    """Open a replacement request; the one-time code goes to the e-mail address on file."""
    opened = requests.open_request(
        ctx,
        msisdn=body.msisdn,
        reason=body.reason.value,
        channel=body.channel,
        actor=body.actor,
        eid=body.eid,
    )
    return CreatedRequest(
        id=opened.id,
        ref=request_ref(opened.id),
        state=opened.state.value,
        verification_methods=list(opened.verification_methods),
        fee={"amount_minor": opened.fee_minor, "currency": opened.fee_currency},
    )


@router.get("/requests", response_model=list[RequestView])
def list_requests(
    ctx: Ctx,
    state: State | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Requests, newest first; with state=in_review, the review queue oldest first."""
    return queries.list_requests(
        ctx, state=state.value if state else None, limit=limit, offset=offset
    )


@router.get("/requests/{request_id}", response_model=RequestView)
def read_request(request_id: str, ctx: Ctx) -> dict[str, Any]:
    """Where the request is and what happens next. Never contains a secret."""
    return queries.get_request_view(ctx, request_id)


@router.post("/requests/{request_id}/verification", response_model=StateOnly)
def verify(request_id: str, body: Verification, ctx: Ctx) -> StateOnly:
    """Submit the one-time code (and PIN where the brand's policy asks for it)."""
    state = requests.submit_verification(ctx, request_id, otp=body.otp, pin=body.pin)
    return StateOnly(id=request_id, state=state.value)


@router.post("/requests/{request_id}/code", status_code=202, response_model=StateOnly)
def resend_code(request_id: str, ctx: Ctx) -> StateOnly:
    """Send a fresh one-time code (the old one stops working)."""
    requests.resend_code(ctx, request_id)
    return StateOnly(id=request_id, state=State.REQUESTED.value)


@router.post("/requests/{request_id}/cancel", response_model=StateOnly)
def cancel_request(request_id: str, body: Cancellation, ctx: Ctx) -> StateOnly:
    state = cancel.cancel(ctx, request_id, actor=body.actor, note=body.note)
    return StateOnly(id=request_id, state=state.value)


@router.post("/requests/{request_id}/review", response_model=StateOnly)
def review_request(request_id: str, body: Review, ctx: Ctx) -> StateOnly:
    """A reviewer approves or rejects a held request (never one they created)."""
    state = review.review(
        ctx,
        request_id,
        reviewer=body.reviewer,
        approve_it=body.decision == "approve",
        note=body.note,
    )
    return StateOnly(id=request_id, state=state.value)


@router.post("/requests/{request_id}/reissue", response_model=StateOnly)
def reissue_request(request_id: str, body: Cancellation, ctx: Ctx) -> StateOnly:
    """The download failed on the device: withdraw that profile and order a fresh one."""
    state = reissue.reissue(ctx, request_id, actor=body.actor)
    return StateOnly(id=request_id, state=state.value)


@router.get("/requests/{request_id}/activation", response_model=Activation)
def activation(request_id: str, request: Request, ctx: Ctx) -> Activation:
    """The activation code (secret): QR payload, one-tap iOS link, address and matching ID."""
    view = queries.activation_view(ctx, request_id)
    base = str(request.url_for("activation_qr", request_id=request_id, fmt="png"))
    return Activation(**view, qr_png_url=base, qr_svg_url=base[: -len("png")] + "svg")


@router.get(
    "/requests/{request_id}/activation/qr.{fmt}",
    name="activation_qr",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
async def activation_qr(request_id: str, fmt: str, ctx: Ctx) -> Response:
    if fmt not in ("png", "svg"):
        raise NotFound("the QR code is served as qr.png or qr.svg", code="NOT_FOUND")
    view = await run_in_threadpool(queries.activation_view, ctx, request_id)
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
    ctx: Ctx, msisdn: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return queries.sim_changes(ctx, msisdn=msisdn, limit=limit)
