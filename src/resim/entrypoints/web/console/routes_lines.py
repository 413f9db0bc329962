"""Console pages: sign-in and sign-out, the home page, a line (redacted until the
agent checks the caller's ID), the ID-document check and creating a request on
the customer's behalf. Thin: parse the form, call one service, render."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.domain.model import Reason, SimForm
from resim.entrypoints.web.common import locale_of
from resim.entrypoints.web.console.pages import (
    COOKIE,
    COOKIE_PATH,
    Caller,
    ConsolePageError,
    ctx_of,
    from_service,
    message_of,
    next_page,
    page,
    posted,
    staff_page,
)
from resim.entrypoints.web.console.routes_loss import loss_of
from resim.entrypoints.web.console.routes_refresh import refresh_of
from resim.errors import ResimError, TooManyAttempts
from resim.services.access import sessions, staff
from resim.services.console import console, console_requests, id_compare

router = APIRouter(prefix="/console", include_in_schema=False)
STAFF = ("agent", "reviewer", "admin")
Anyone = Annotated[Caller, staff_page("anyone")]
Staff = Annotated[Caller, staff_page(*STAFF)]
Agent = Annotated[Caller, staff_page("agent")]
# Reviewers open a line to see (and lift) a freeze; its details stay redacted for them.
LineReaders = Annotated[Caller, staff_page("agent", "reviewer")]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _error(request: Request, exc: ResimError) -> tuple[int, str]:
    failed = from_service(exc)
    return failed.status, message_of(locale_of(request), failed.code, failed.message)


def _wait_of(exc: ResimError) -> int | None:
    """A countdown for a sign-in that backs off (issue 12); a hard cap says "later" only."""
    if isinstance(exc, TooManyAttempts) and exc.code == "BACKING_OFF" and exc.retry_after:
        return math.ceil(exc.retry_after)
    return None


@router.get("/login")
async def login_form(request: Request, caller: Anyone) -> Response:
    """The sign-in form; ``?next=``: the console page to return to after signing in."""
    going_to = next_page(request.query_params.get("next"))
    context = {"error": None, "username": "", "next": going_to}
    return page(request, caller, "login.html.j2", context)


@router.post("/login")
async def login(request: Request, caller: Anyone) -> Response:
    form = await posted(request, caller)
    username = form.get("username", "")[:80]
    going_to = next_page(form.get("next"))
    if not (username and form.get("password") and form.get("totp")):
        message = message_of(locale_of(request), "FILL_IN", "")
        context = {"error": message, "username": username, "next": going_to}
        return page(request, caller, "login.html.j2", context, status=400)
    try:
        signed_in = await run_in_threadpool(
            staff.login,
            ctx_of(request),
            username=username,
            password=form.get("password", "")[:256],
            totp_code=form.get("totp", "")[:12],
            source_ip=caller.principal.source_ip,
        )
    except ResimError as exc:
        status, message = _error(request, exc)
        wait = _wait_of(exc)
        values = {"error": message, "username": username, "wait_seconds": wait}
        values["next"] = going_to
        return page(request, caller, "login.html.j2", values, status=status)
    response = _see_other(going_to)
    # A browser-session cookie: the server ends the session at its expiry (or sign-out).
    response.set_cookie(
        COOKIE,
        signed_in.session.token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, caller: Staff) -> Response:
    await posted(request, caller)
    session_id = caller.principal.session_id
    # Signing out of the console ends the cookie's session; a bearer caller (an API
    # client) ends its own with POST /v1/auth/logout.
    if session_id is not None and caller.via_cookie:
        await run_in_threadpool(
            sessions.revoke_session,
            ctx_of(request),
            session_id=session_id,
            actor=caller.principal.actor,
        )
    response = _see_other("/console/login")
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


@router.get("")
async def home(request: Request, caller: Staff) -> Response:
    return page(request, caller, "home.html.j2", {})


def _line_context(view: dict[str, Any] | None, msisdn: str, **extra: Any) -> dict[str, Any]:
    return {
        "msisdn": msisdn,
        "view": view,
        "document_types": console.DOCUMENT_TYPES,
        "reasons": [r.value for r in Reason],
        "forms": [f.value for f in SimForm],
        "error": None,
        "done": None,
        **extra,
    }


@router.get("/lines")
async def line(request: Request, caller: LineReaders, msisdn: str = "", done: str = "") -> Response:
    """Search by phone number; the view is redacted until this agent checks the ID."""
    number = msisdn.strip()[:32]
    if not number:
        return page(request, caller, "line.html.j2", _line_context(None, ""))
    return await show_line(
        request,
        caller,
        number,
        done=done if done in ("unfrozen", "approved", "matched", "refresh") else None,
    )


async def show_line(
    request: Request,
    caller: Caller,
    number: str,
    *,
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    """The line page for ``number`` (``error``: a refusal to show on it)."""
    try:
        view = await run_in_threadpool(
            console.line_view,
            ctx_of(request),
            staff_id=caller.staff_id,
            msisdn=number,
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        status, message = _error(request, exc)
        return page(
            request,
            caller,
            "line.html.j2",
            _line_context(None, number, error=message),
            status=status,
        )
    context = _line_context(view, number, error=error, done=done)
    context["loss"] = await run_in_threadpool(loss_of, ctx_of(request), number, caller)
    context["refresh"] = await run_in_threadpool(refresh_of, ctx_of(request), number, caller)
    zone_brand = view.get("brand_id")  # operator-wide staff: the line's brand's time
    return page(request, caller, "line.html.j2", context, status=status, zone_brand=zone_brand)


@router.post("/lines/{msisdn}/identity-check")
async def identity_check(request: Request, msisdn: str, caller: Agent) -> Response:
    """Compare what the agent read off the document (name, birth date, last 4 digits
    of its number; never an image) with the account; a match unlocks the full view."""
    form = await posted(request, caller)
    try:
        await run_in_threadpool(
            id_compare.compare_identity,
            ctx_of(request),
            staff_id=caller.staff_id,
            msisdn=msisdn,
            document_type=form.get("document_type", ""),
            name=form.get("name", "")[:300],
            birth_date=form.get("birth_date", "")[:20],
            last_digits=form.get("last_digits", "")[:8],
            scope=caller.principal.scope,
        )
    except ResimError as exc:
        status, message = _error(request, exc)
        if status in (401, 403):
            raise ConsolePageError(status, exc.code or "", exc.message) from None
        return await show_line(request, caller, msisdn, error=message, status=status)
    return _see_other(f"/console/lines?msisdn={quote(msisdn)}&done=matched")


@router.post("/lines/{msisdn}/requests")
async def create_on_behalf(request: Request, msisdn: str, caller: Agent) -> Response:
    """Open a request for the customer (channel agent), verified by this agent's ID check."""
    form = await posted(request, caller)
    reason, form_factor = form.get("reason", ""), form.get("target_form", "")
    if reason not in {r.value for r in Reason} or form_factor not in {f.value for f in SimForm}:
        message = message_of(locale_of(request), "CHOOSE_REASON_FORM", "")
        return await show_line(request, caller, msisdn, error=message, status=400)
    try:
        made = await run_in_threadpool(
            console_requests.create_on_behalf,
            ctx_of(request),
            staff_id=caller.staff_id,
            msisdn=msisdn,
            reason=reason,
            target_form=form_factor,
            scope=caller.principal.scope,
            source_ip=caller.principal.source_ip,
            session_id=caller.principal.session_id,
        )
    except ResimError as exc:
        status, message = _error(request, exc)
        return await show_line(request, caller, msisdn, error=message, status=status)
    return _see_other(f"/console/requests/{made.request_id}")
