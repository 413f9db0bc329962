"""The customer portal, part 3: the status page, the eSIM, and the session's actions.

``GET /portal/requests/{id}`` says where the request is and what happens
next, to anyone holding the link (no personal data: the number is masked).
Only the verified session of *this* request (the ``resim_session`` cookie set
by the verify step, resolved with :func:`resim.services.access.sessions.resolve_bearer`)
also gets the activation: QR code, iOS one-tap link, SM-DP+ address and
matching ID (SEC-10), and the buttons to reissue, step up or cancel.

``GET .../status.json`` returns the same status block, rendered, with a
version string; ``static/portal.js`` polls it and swaps the block in place.
Without JavaScript the page refreshes itself (``<meta refresh>`` inside
``<noscript>``) and has a refresh link.

``/status/{id}`` (the link in older mails) shows the same page. The actions
(reissue, cancel, "I have installed it", step-up, activate a card) answer 303
back to the status page (post/redirect/get), an error travelling in the flash
cookie (:mod:`.portal_flash`). Confirming again after the session ended, the
signed "continue" link and "this was not me" are in :mod:`.portal_continue`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from resim.adapters.qr import qr_png
from resim.entrypoints.api.access import allow
from resim.entrypoints.web.common import locale_of
from resim.entrypoints.web.device import device_kind
from resim.entrypoints.web.portal import (
    DOMAIN,
    SESSION_COOKIE,
    checked_form,
    ctx_of,
    localised_error,
    not_found,
    page,
    source_ip,
    view_of,
)
from resim.entrypoints.web.portal_flash import redirect
from resim.entrypoints.web.portal_text import BY_CODE, FORM_EXPIRED, PageError
from resim.entrypoints.web.templating import environment
from resim.errors import ResimError, Unauthenticated
from resim.services.access import sessions
from resim.services.delivery import delivery
from resim.services.provisioning import reconcile
from resim.services.replacement import cancel, portal, queries, reissue
from resim.services.verification import verify_request
from resim.services.verification.verification import Evidence

router = APIRouter(include_in_schema=False, dependencies=[allow("anyone")])
POLL_SECONDS = 3


def owner_session(request: Request, request_id: str) -> str | None:
    """The id of the browser's live customer session for exactly this request, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        caller = sessions.resolve_bearer(ctx_of(request), token)
    except Unauthenticated:
        return None
    return caller.id if caller.kind == "customer" and caller.request_id == request_id else None


def owns(request: Request, request_id: str) -> bool:
    """Whether the browser holds a live customer session for exactly this request."""
    return owner_session(request, request_id) is not None


def _activation(
    request: Request, view: portal.PortalRequest, session_id: str
) -> dict[str, Any] | None:
    if view.state.value != "ready" or view.installed_at is not None:
        return None
    try:
        act = queries.activation_view(
            ctx_of(request),
            view.id,
            reader=f"customer:session:{session_id}",
            via="portal",
            source=source_ip(request),
        )
    except ResimError:
        return None
    import base64

    png = base64.b64encode(qr_png(act["qr_payload"])).decode()
    return {**act, "qr_data_uri": f"data:image/png;base64,{png}"}


def _status_values(
    request: Request, request_id: str, *, unless_version: str | None = None
) -> dict[str, Any] | None:
    """What the status block shows (blocking: call in a thread).

    With ``unless_version`` equal to the request's current version, only
    ``req`` (the page's poller already shows the rest): the activation code is
    then not read, so polling a ready request writes no audit row per poll.
    """
    try:
        view = portal.portal_request(ctx_of(request), request_id)
    except ResimError:
        return None
    if unless_version is not None and unless_version == view.version:
        return {"req": view}
    session_id = owner_session(request, request_id)
    return {
        "req": view,
        "brand": view.brand,
        "device": device_kind(request.headers.get("user-agent")),
        "mine": session_id is not None,
        "activation": _activation(request, view, session_id) if session_id else None,
        "now": ctx_of(request).now(),
        "poll_seconds": POLL_SECONDS,
        # resim demo only: the "simulate the phone" button (web/portal_demo.py)
        "demo_phone": bool(getattr(request.app.state, "demo_phone_url", "")),
    }


async def _status_page(
    request: Request, request_id: str, *, error: PageError | None = None, status: int = 200
) -> Response:
    values = await run_in_threadpool(_status_values, request, request_id)
    if values is None:
        return not_found(request)
    checking = request.query_params.get("checking") == "1"  # after "I have installed it"
    return page(
        request,
        "portal/status.html.j2",
        {**values, "error": error, "checking": checking},
        status=status,
        here=f"/portal/requests/{request_id}",
    )


@router.get("/portal/requests/{request_id}")
async def status_page(request_id: str, request: Request) -> Response:
    return await _status_page(request, request_id)


@router.get("/status/{request_id}")
async def status_from_mail(request_id: str, request: Request) -> Response:
    return await _status_page(request, request_id)


@router.get("/portal/requests/{request_id}/status.json")
async def status_json(request_id: str, request: Request, v: str | None = None) -> Response:
    """The status block; ``v``: the version the page shows (unchanged: no block)."""
    values = await run_in_threadpool(lambda: _status_values(request, request_id, unless_version=v))
    if values is None:
        return JSONResponse({"found": False}, status_code=404)
    view: portal.PortalRequest = values["req"]
    if "mine" not in values:  # the page is up to date: nothing read, nothing rendered
        return JSONResponse(
            {"found": True, "state": view.state.value, "version": view.version},
            headers={"Cache-Control": "no-store"},
        )
    ctx = ctx_of(request)
    from resim.entrypoints.web.csrf import CSRF_FIELD, csrf_token

    token, _ = csrf_token(request, ctx.otp_pepper)
    env = environment(DOMAIN, locale_of(request))
    html = env.get_template("portal/_status.html.j2").render(
        {**values, "csrf_field": CSRF_FIELD, "csrf_token": token, "error": None}
    )
    return JSONResponse(
        {"found": True, "state": view.state.value, "version": view.version, "html": html},
        headers={"Cache-Control": "no-store"},
    )


async def _owned_action(request: Request, request_id: str) -> dict[str, str] | Response:
    """The form of an action only the request's live session may take, or the answer.

    Unknown request: 404. A wrong or old form, or no live session for this
    request (another browser, or the session ended): 303 back to the status
    page, which says why; nothing changed.
    """
    here = status_url(request_id)
    form = await checked_form(request)
    if form is None:
        return redirect(request, here, error=PageError(FORM_EXPIRED))
    if not await run_in_threadpool(owns, request, request_id):
        if await view_of(request, request_id) is None:
            return not_found(request)
        return redirect(request, here, error=PageError(BY_CODE["SESSION_ENDED"]))
    return form


def status_url(request_id: str) -> str:
    return f"/portal/requests/{request_id}"


async def _after(request: Request, request_id: str, call: Any) -> Response:
    try:
        await run_in_threadpool(call)
    except ResimError as exc:
        return redirect(request, status_url(request_id), error=localised_error(request, exc))
    return RedirectResponse(status_url(request_id), status_code=303)


@router.post("/portal/requests/{request_id}/reissue")
async def reissue_esim(request_id: str, request: Request) -> Response:
    form = await _owned_action(request, request_id)
    if isinstance(form, Response):
        return form
    ctx = ctx_of(request)
    return await _after(
        request, request_id, lambda: reissue.reissue(ctx, request_id, actor="customer")
    )


@router.post("/portal/requests/{request_id}/cancel")
async def cancel_request(request_id: str, request: Request) -> Response:
    form = await _owned_action(request, request_id)
    if isinstance(form, Response):
        return form
    ctx = ctx_of(request)
    return await _after(
        request, request_id, lambda: cancel.cancel(ctx, request_id, actor="customer", note=None)
    )


@router.post("/portal/requests/{request_id}/installed")
async def report_installed(request_id: str, request: Request) -> Response:
    """The customer says "I have installed it": the verified session asks for the check
    the reconcile job makes (core network attach, SM-DP+ state where configured), now."""
    form = await _owned_action(request, request_id)
    if isinstance(form, Response):
        return form
    ctx = ctx_of(request)
    try:
        await run_in_threadpool(lambda: reconcile.check_now(ctx, request_id, actor="customer"))
    except ResimError as exc:
        return redirect(request, status_url(request_id), error=localised_error(request, exc))
    return RedirectResponse(f"{status_url(request_id)}?checking=1", status_code=303)


@router.post("/portal/requests/{request_id}/step-up")
async def step_up(request_id: str, request: Request) -> Response:
    form = await _owned_action(request, request_id)
    if isinstance(form, Response):
        return form
    ctx = ctx_of(request)
    ip = source_ip(request)
    evidence = Evidence(totp=form.get("totp") or None)
    return await _after(
        request,
        request_id,
        lambda: verify_request.submit_step_up(
            ctx, request_id, evidence=evidence, actor="customer", source_ip=ip
        ),
    )


@router.post("/portal/requests/{request_id}/activate")
async def activate_card(request_id: str, request: Request) -> Response:
    """A courier card arrived: the verified session types its ICCID (see services.delivery)."""
    form = await _owned_action(request, request_id)
    if isinstance(form, Response):
        return form
    ctx = ctx_of(request)
    ip = source_ip(request)
    typed = form.get("iccid", "")[:40]
    try:
        await run_in_threadpool(
            lambda: delivery.activate_delivered(
                ctx, request_id=request_id, iccid=typed, source_ip=ip
            )
        )
    except ResimError as exc:
        err = localised_error(request, exc)
        err = dataclasses.replace(err, field="iccid")
        return redirect(request, status_url(request_id), error=err)
    return RedirectResponse(status_url(request_id), status_code=303)
