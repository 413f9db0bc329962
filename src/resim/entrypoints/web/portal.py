"""The customer portal, part 1: start from the number, choose, open.

Server-rendered pages under ``/portal`` that work without JavaScript: every
step is a plain form POST with a CSRF token (:mod:`.csrf`), and every POST
answers 303 to a GET (post/redirect/get, issue 12 finding 1): Back, reload and
a closed tab never meet the browser's "resubmit the form?" warning. What the
next page shows travels in the flash cookie, the number in the draft cookie
(:mod:`.portal_flash`). Thin: parse, call one service, redirect; attempt
limits, back-off and the verification rules are the services'.

Flow: ``GET /portal`` (number) -> ``POST /portal/start`` -> ``GET
/portal/choose`` (reason and SIM) -> ``POST /portal/requests`` (opens the
request, or continues the one already open: ``resume.open_or_continue``; the
code and the signed link go to the e-mail on file) -> ``GET /portal/sent``
("check your e-mail", the same for every number: an unknown, locked or frozen
one, one with a request open, and one just opened all look alike, issue 13
finding 15) -> the mail's link ``GET /c/{token}`` (:mod:`.portal_continue`)
-> ``GET /portal/requests/{id}/verify`` (:mod:`.portal_verify`) -> ``GET
/portal/requests/{id}`` (status; :mod:`.portal_status`).

The reason is chosen before verifying, because verifying sets things going
at once (a lost or stolen SIM is suspended the moment identity is proven).
The fee is shown on the confirm page, before the customer confirms.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.domain.identifiers import normalize_eid, normalize_msisdn
from resim.domain.model import Reason
from resim.entrypoints.api.access import allow
from resim.entrypoints.api.forwarded import source_address
from resim.entrypoints.web.common import FormTooLarge, locale_of, read_form
from resim.entrypoints.web.csrf import (
    CSRF_FIELD,
    CsrfError,
    check_csrf,
    csrf_token,
    set_csrf_cookie,
)
from resim.entrypoints.web.device import device_of, set_device_cookie
from resim.entrypoints.web.portal_brand import look, typed_number
from resim.entrypoints.web.portal_flash import (
    draft_number,
    forget_flash,
    redirect,
    set_draft,
    take_flash,
)
from resim.entrypoints.web.portal_text import (
    BY_CODE,
    DELIVERY_LABELS,
    FORM_EXPIRED,
    METHOD_LABELS,
    NEUTRAL_NAME,
    REASONS,
    PageError,
    error_for,
)
from resim.entrypoints.web.templating import format_when, render
from resim.errors import InvalidInput, ResimError
from resim.services.access import sessions
from resim.services.context import ServiceContext
from resim.services.notifications import brand_look
from resim.services.replacement import portal, resume
from resim.services.replacement.open_spec import parse_open

DOMAIN = "portal"
SESSION_COOKIE = "resim_session"

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[allow("anyone")])


def ctx_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def source_ip(request: Request) -> str | None:
    return source_address(request)


def page(
    request: Request,
    template: str,
    values: dict[str, Any],
    *,
    status: int = 200,
    here: str | None = None,
) -> Response:
    """Render a portal page with the CSRF token, the site's name and the language.

    A flash left by the POST that redirected here (:mod:`.portal_flash`) is
    shown once: its values override ``values``, and the cookie is deleted.
    """
    ctx = ctx_of(request)
    token, new_nonce = csrf_token(request, ctx.otp_pepper)
    flashed = take_flash(request, request.url.path) if request.method == "GET" else None
    req = values.get("req")
    brand = values.get("brand") or (req.brand if isinstance(req, portal.PortalRequest) else None)
    response = render(
        request,
        domain=DOMAIN,
        locale=locale_of(request),
        template=template,
        context={
            # The operator's neutral name until the number tells the brand.
            "site_name": NEUTRAL_NAME,
            "home_url": "/portal",
            "lang_form": None,
            "csrf_field": CSRF_FIELD,
            "csrf_token": token,
            "reasons": REASONS,
            "method_labels": METHOD_LABELS,
            "delivery_labels": DELIVERY_LABELS,
            "error": None,
            **values,
            **(flashed or {}),
            "brand": brand,
        },
        status=status,
        here=here,
    )
    set_csrf_cookie(request, response, new_nonce)
    if flashed is not None:
        forget_flash(request, response)
    return response


async def checked_form(request: Request) -> dict[str, str] | None:
    """The POSTed form, or None when its CSRF token or size is wrong."""
    try:
        form = await read_form(request)
        check_csrf(request, ctx_of(request).otp_pepper, form.get(CSRF_FIELD))
    except (CsrfError, FormTooLarge):
        return None
    return form


def expired_form(request: Request, to: str) -> Response:
    """A POST whose CSRF token or size is wrong: back to ``to``, nothing changed."""
    return redirect(request, to, error=PageError(FORM_EXPIRED))


def localised_error(
    request: Request,
    exc: ResimError,
    *,
    zone: str | None = None,
    left: int | None = None,
    wait: int | None = None,
) -> PageError:
    locale = locale_of(request)
    return error_for(
        exc,
        now=ctx_of(request).now(),
        when=lambda t: format_when(t, locale, zone),
        attempts_left=left,
        wait_seconds=wait,
    )


def status_for(exc: ResimError) -> int:
    return {"NotFound": 404, "Conflict": 409, "TooManyAttempts": 429}.get(type(exc).__name__, 422)


START = "portal/start.html.j2"
NUMBER_FORM = "number-form"  # the start form's id: the language buttons post it


@router.get("")
async def start_page(request: Request) -> Response:
    values = {"msisdn": typed_number(request), "lang_form": NUMBER_FORM}
    return page(request, START, values)


@router.post("/start")
async def start(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return expired_form(request, "/portal")
    raw = form.get("msisdn", "")
    try:
        found = await run_in_threadpool(brand_look.find_number, ctx_of(request), raw)
    except ResimError as exc:
        # Told here, where the number is still on screen (issue 12): a typing
        # mistake, a number of no brand here, or one that needs its country code.
        code = exc.code if exc.code in BY_CODE else "INVALID_MSISDN"
        err = PageError(BY_CODE[code], field="msisdn")
        return redirect(request, "/portal", error=err, msisdn=raw[:40])
    response = redirect(request, "/portal/choose")
    set_draft(request, response, found.msisdn)
    return response


@router.get("/choose")
async def choose_page(request: Request) -> Response:
    """Reason and SIM for the number in the draft cookie (none: back to the start)."""
    number = draft_number(request)
    if number is None:
        return redirect(request, "/portal")
    values = await run_in_threadpool(_choose_values, ctx_of(request), number, {})
    return page(request, "portal/choose.html.j2", values)


def _choose_values(ctx: ServiceContext, number: str, form: dict[str, str]) -> dict[str, Any]:
    """What the choose page shows (blocking: looks up the brand's delivery modes,
    fee schedule and look): the fee and the ways to get the SIM before any code."""
    options = portal.delivery_options(ctx, number)
    return {
        "brand": brand_look.brand_look(ctx, options.brand_id) if options.brand_id else None,
        "options": options,
        "lang_form": "choose-form",
        "msisdn": number,
        "reason": form.get("reason", ""),
        "eid": form.get("eid", ""),
        "delivery": _delivery_of(form) or options.modes[0],
        "modes": options.modes,
        "courier_fee_minor": options.courier_fee_minor,
        "currency": options.currency,
    }


def _delivery_of(form: dict[str, str]) -> str:
    """The chosen delivery mode; the older field ``form=esim`` means an eSIM."""
    return form.get("delivery", "") or ("esim" if form.get("form") == "esim" else "")


@router.post("/requests")
async def open_request(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return expired_form(request, "/portal/choose" if draft_number(request) else "/portal")
    try:
        number = normalize_msisdn(form.get("msisdn", "") or draft_number(request) or "")
    except InvalidInput:
        err = PageError(BY_CODE["INVALID_MSISDN"], field="msisdn")
        return redirect(request, "/portal", error=err)
    ctx = ctx_of(request)
    values = await run_in_threadpool(_choose_values, ctx, number, form)
    reason = form.get("reason", "")
    delivery = _delivery_of(form)
    eid = form.get("eid", "").replace(" ", "")
    problem: PageError | None = None
    if reason not in {r.value for r in Reason}:
        problem = PageError(BY_CODE["INVALID_REASON"], field="reason")
    elif delivery not in values["modes"]:
        code = "DELIVERY_MODE_NOT_OFFERED" if delivery else "DELIVERY_REQUIRED"
        problem = PageError(BY_CODE[code], field="delivery")
    elif eid and delivery != "esim":
        eid = ""  # an EID binds an eSIM to a phone; a card does not need one
    elif eid:
        try:
            eid = normalize_eid(eid)
        except InvalidInput:
            problem = PageError(BY_CODE["INVALID_EID"], field="eid")
    if problem is not None:
        kept = {"reason": reason, "delivery": values["delivery"], "eid": form.get("eid", "")}
        response = redirect(request, "/portal/choose", error=problem, **kept)
        set_draft(request, response, number)
        return response
    device, new_cookie = device_of(request, ctx.otp_pepper)  # SEC-07 new_device
    spec = parse_open(
        msisdn=number,
        reason=reason,
        channel="portal",
        eid=eid or None,
        device_id=device,
        delivery_mode=delivery,
        language=locale_of(request),  # its mail goes out in the page's language
    )
    ip = source_ip(request)  # the geolocated country (SEC-07 new_country) comes from it
    # Every number, opened, continued or refused, gets the same answer (issue 13,
    # finding 15); the customer continues from the signed link in the mail. A
    # number with a request open gets a fresh code or link (issue 12, finding 1).
    await run_in_threadpool(
        lambda: resume.open_or_continue(ctx, spec, actor="customer", source_ip=ip)
    )
    # The sent page wears the brand the choose page already showed.
    brand = values["brand"]
    sent = f"/portal/sent?brand={brand.id}" if brand is not None else "/portal/sent"
    response = RedirectResponse(sent, status_code=303)
    set_device_cookie(request, response, new_cookie)
    return response


@router.get("/sent")
async def sent_page(request: Request) -> Response:
    """The page after opening ("check your e-mail"): the same for every number of a
    brand; ``?brand=`` (the brand the choose page already showed) dresses it."""
    brand_id = request.query_params.get("brand", "")[:40]
    brand = await run_in_threadpool(look, request, brand_id) if brand_id else None
    return page(request, "portal/sent.html.j2", {"brand": brand}, here="/portal")


async def view_of(request: Request, request_id: str) -> portal.PortalRequest | None:
    try:
        return await run_in_threadpool(portal.portal_request, ctx_of(request), request_id)
    except ResimError:
        return None


def not_found(request: Request) -> Response:
    err = PageError(BY_CODE["REQUEST_NOT_FOUND"])
    return page(request, "portal/not_found.html.j2", {"error": err}, status=404)


def session_redirect(request: Request, request_id: str, issued: sessions.IssuedSession) -> Response:
    """303 to the status page, setting the verified session's cookie."""
    response = RedirectResponse(f"/portal/requests/{request_id}", status_code=303)
    ttl = int((issued.expires_at - ctx_of(request).now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=max(ttl, 60),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response
