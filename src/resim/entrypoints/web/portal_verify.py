"""The customer portal, part 2: confirm it is you (verify), and "send a new code".

``GET /portal/requests/{id}/verify`` shows the fee and the ways to confirm to
whoever holds the link from the mail; ``POST .../verify`` checks them and, on
success, sets the customer session cookie bound to this request. ``POST
.../code`` mails a new code (it replaces the old one). Both POSTs answer 303
(post/redirect/get): back to the verify page with the outcome in the flash
cookie (:mod:`.portal_flash`), or on to the status page.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.entrypoints.api.access import allow
from resim.entrypoints.web.common import locale_of
from resim.entrypoints.web.portal import (
    checked_form,
    ctx_of,
    localised_error,
    not_found,
    page,
    session_redirect,
    source_ip,
    view_of,
)
from resim.entrypoints.web.portal_flash import redirect
from resim.entrypoints.web.portal_text import BY_CODE, FORM_EXPIRED, PageError
from resim.errors import ResimError
from resim.services.access import sessions
from resim.services.replacement import portal, request_language, requests

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[allow("anyone")])


def verify_url(request_id: str) -> str:
    return f"/portal/requests/{request_id}/verify"


def combo_of(view: portal.PortalRequest, form: dict[str, str]) -> dict[str, str | None]:
    """The fields of the way to confirm the customer chose (only those)."""
    try:
        combo = view.combos[int(form.get("combo", "0"))]
    except (ValueError, IndexError):
        combo = view.combos[0] if view.combos else ()
    return {m: form.get(m, "") or None for m in combo}


@router.get("/requests/{request_id}/verify")
async def verify_page(request_id: str, request: Request) -> Response:
    view = await view_of(request, request_id)
    if view is None:
        return not_found(request)
    if view.state.value != "requested":
        return RedirectResponse(f"/portal/requests/{view.id}", status_code=303)
    return page(
        request,
        "portal/verify.html.j2",
        {"req": view, "error": None},
        here=verify_url(view.id),
    )


@router.post("/requests/{request_id}/verify")
async def verify(request_id: str, request: Request) -> Response:
    view = await view_of(request, request_id)
    if view is None:
        return not_found(request)
    here = verify_url(view.id)
    form = await checked_form(request)
    if form is None:
        return redirect(request, here, error=PageError(FORM_EXPIRED))
    if view.fee_minor > 0 and form.get("accept_fee") != "yes":
        err = PageError(BY_CODE["FEE_NOT_ACCEPTED"], field="accept_fee")
        return redirect(request, here, error=err)
    given = combo_of(view, form)
    ctx = ctx_of(request)
    ip = source_ip(request)
    lang = locale_of(request)

    def run() -> sessions.IssuedSession:
        requests.submit_verification(
            ctx,
            request_id,
            otp=given.get("email_otp"),
            pin=given.get("pin"),
            password=given.get("password"),
            totp=given.get("totp"),
            actor="customer",
            source_ip=ip,
        )
        # Confirmed in this language: the notices that follow speak it too.
        request_language.remember_language(ctx, request_id, lang)
        return sessions.issue_customer_session(ctx, request_id=request_id, source_ip=ip)

    try:
        issued = await run_in_threadpool(run)
    except ResimError as exc:
        after = await view_of(request, request_id) or view
        if after.state.value != "requested":
            return RedirectResponse(f"/portal/requests/{view.id}", status_code=303)
        err = localised_error(
            request,
            exc,
            zone=view.timezone,
            left=after.attempts_left,
            wait=after.retry_in_seconds,
        )
        return redirect(request, here, error=err)
    return session_redirect(request, request_id, issued)


@router.post("/requests/{request_id}/code")
async def resend_code(request_id: str, request: Request) -> Response:
    view = await view_of(request, request_id)
    if view is None:
        return not_found(request)
    here = verify_url(view.id)
    form = await checked_form(request)
    if form is None:
        return redirect(request, here, error=PageError(FORM_EXPIRED))
    ctx = ctx_of(request)
    try:
        # the new code's mail in the language of the page that asked for it
        await run_in_threadpool(
            request_language.remember_language, ctx, request_id, locale_of(request)
        )
        await run_in_threadpool(requests.resend_code, ctx, request_id)
    except ResimError as exc:
        return redirect(request, here, error=localised_error(request, exc, zone=view.timezone))
    return redirect(request, here, code_resent=True)
