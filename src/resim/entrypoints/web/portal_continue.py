"""The customer portal, part 4: coming back to a request (issue 12, findings 1 and 3).

* ``GET /c/{token}``: the signed "continue your request" link in every
  customer mail and SMS about a request (:mod:`resim.services.replacement.continue_link`).
  It signs nobody in: an unverified request goes to its verify page; a ready
  one with a code out for confirming again (the link in that code's mail), in
  a browser without the session, to the form for that code; anything else to
  its status page, which offers a fresh verification where one is needed.
  A tampered or malformed link: 404; an expired one: 410; both say what to do
  instead, and change nothing. GET only reads (mail scanners follow links).
* Confirming again (``reconfirm``): a courier card that arrived, or a ready
  eSIM whose session ended or that is opened on another device (the new
  phone). ``POST .../reconfirm/code`` mails a fresh code, ``GET
  .../reconfirm`` shows the form, ``POST .../reconfirm`` checks it and gives
  this browser a fresh session (:mod:`resim.services.replacement.reconfirm`).
* "This was not me": ``GET /not-me/{token}`` does nothing (mail scanners);
  its button POSTs, without a CSRF token (the unguessable token in the address
  is the capability, and whoever could forge the POST could as well send it),
  and the answer is a 303 to ``GET /portal/not-me/done``.

Every POST answers 303 (post/redirect/get), with what the next page shows in
the flash cookie (:mod:`.portal_flash`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

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
from resim.entrypoints.web.portal_flash import redirect, take_flash
from resim.entrypoints.web.portal_status import owns, status_url
from resim.entrypoints.web.portal_text import BY_CODE, FORM_EXPIRED, PageError
from resim.entrypoints.web.portal_verify import combo_of, verify_url
from resim.errors import NotFound, ResimError, VerificationFailed
from resim.services.access import sessions
from resim.services.replacement import cancel, continue_link, portal, reconfirm, request_language
from resim.services.verification.verification import Evidence

router = APIRouter(include_in_schema=False, dependencies=[allow("anyone")])
NOT_ME_DONE = "/portal/not-me/done"
# Where confirming again can apply (the service decides: services.reconfirm.can_confirm_again)
AGAIN_STATES = frozenset({"verified", "in_review", "approved", "provisioning", "ready"})


def reconfirm_url(request_id: str) -> str:
    return f"/portal/requests/{request_id}/reconfirm"


@router.get("/c/{token}")
async def continue_request(token: str, request: Request) -> Response:
    """Where the signed link leads: never a session, at most a fresh verification."""
    ctx = ctx_of(request)
    try:
        link = continue_link.open_token(ctx, token)
    except continue_link.LinkExpired:
        return _link_refused(request, "expired", status=410)
    except NotFound:
        return _link_refused(request, "invalid", status=404)
    view = await view_of(request, link.request_id)
    if view is None:
        return _link_refused(request, "invalid", status=404)
    if view.state.value == "requested":
        return RedirectResponse(verify_url(view.id), status_code=303)
    if _code_waiting(view, ctx.now()) and not await run_in_threadpool(owns, request, view.id):
        # the link in the mail with the code for confirming again: to the code form
        return RedirectResponse(reconfirm_url(view.id), status_code=303)
    return RedirectResponse(status_url(view.id), status_code=303)


def _code_waiting(view: portal.PortalRequest, now: dt.datetime) -> bool:
    """A ready request the customer may confirm again, with a recent code out."""
    return (
        view.state.value in AGAIN_STATES
        and view.installed_at is None
        and view.code_pending
        and view.code_expires_at is not None
        and view.code_expires_at > now
    )


def _link_refused(request: Request, why: str, *, status: int) -> Response:
    msgid = BY_CODE["CONTINUE_LINK_EXPIRED" if why == "expired" else "CONTINUE_LINK_INVALID"]
    return page(
        request,
        "portal/link_refused.html.j2",
        {"error": PageError(msgid), "why": why},
        status=status,
        here="/portal",
    )


@router.post("/portal/requests/{request_id}/reconfirm/code")
async def reconfirm_code(request_id: str, request: Request) -> Response:
    """Mail a fresh code to confirm again (a courier card arrived; an eSIM to show again)."""
    form = await checked_form(request)
    if form is None:
        return redirect(request, status_url(request_id), error=PageError(FORM_EXPIRED))
    ctx = ctx_of(request)
    try:
        # the code's mail, and what follows, in the language of the page that asked
        await run_in_threadpool(
            request_language.remember_language, ctx, request_id, locale_of(request)
        )
        await run_in_threadpool(reconfirm.send_code, ctx, request_id)
    except ResimError as exc:
        if exc.code == "REQUEST_NOT_FOUND":
            return not_found(request)
        err = localised_error(request, exc)
        if exc.code == "NOT_AWAITING_ACTIVATION":
            return redirect(request, status_url(request_id), error=err)
        return redirect(request, reconfirm_url(request_id), error=err)
    return redirect(request, reconfirm_url(request_id), code_resent=True)


@router.get("/portal/requests/{request_id}/reconfirm")
async def reconfirm_page(request_id: str, request: Request) -> Response:
    view = await view_of(request, request_id)
    if view is None:
        return not_found(request)
    if view.state.value not in AGAIN_STATES or view.installed_at is not None:
        return RedirectResponse(status_url(view.id), status_code=303)
    return page(
        request,
        "portal/verify.html.j2",
        {"req": online(view), "error": None, "reconfirm": True},
        here=reconfirm_url(view.id),
    )


def online(view: portal.PortalRequest) -> portal.PortalRequest:
    """The request with the ways to confirm on the portal (services.reconfirm uses them)."""
    return dataclasses.replace(view, combos=view.online_combos)


@router.post("/portal/requests/{request_id}/reconfirm")
async def reconfirm_identity(request_id: str, request: Request) -> Response:
    """Prove identity again (the policy's combinations); a fresh session on success."""
    view = await view_of(request, request_id)
    if view is None:
        return not_found(request)
    here = reconfirm_url(view.id)
    form = await checked_form(request)
    if form is None:
        return redirect(request, here, error=PageError(FORM_EXPIRED))
    given = combo_of(online(view), form)
    ctx = ctx_of(request)
    ip = source_ip(request)
    lang = locale_of(request)
    evidence = Evidence(
        otp=given.get("email_otp"),
        pin=given.get("pin"),
        password=given.get("password"),
        totp=given.get("totp"),
    )

    def run() -> sessions.IssuedSession:
        reconfirm.reconfirm(ctx, request_id, evidence=evidence, source_ip=ip)
        request_language.remember_language(ctx, request_id, lang)  # later notices too
        return sessions.issue_customer_session(ctx, request_id=request_id, source_ip=ip)

    try:
        issued = await run_in_threadpool(run)
    except ResimError as exc:
        err = localised_error(request, exc, zone=view.timezone)
        if isinstance(exc, VerificationFailed) and exc.code != "OTP_EXPIRED":
            err = PageError(BY_CODE["RECONFIRM_FAILED"])
        if exc.code == "NOT_AWAITING_ACTIVATION":
            return redirect(request, status_url(request_id), error=err)
        return redirect(request, here, error=err)
    return session_redirect(request, request_id, issued)


@router.get("/not-me/{token}")
async def not_me_form(token: str, request: Request) -> Response:
    return page(request, "portal/not_me.html.j2", {"token": token, "done": None})


@router.post("/not-me/{token}")
async def not_me(token: str, request: Request) -> Response:
    # The answer page does not repeat the token: its language links go to the
    # portal, not back to the (now used, or never valid) link.
    try:
        outcome = await run_in_threadpool(cancel.report_not_me, ctx_of(request), token)
    except ResimError:
        return redirect(request, NOT_ME_DONE, done="invalid")
    return redirect(request, NOT_ME_DONE, done="cancelled" if outcome.cancelled else "recorded")


@router.get(NOT_ME_DONE)
async def not_me_done(request: Request) -> Response:
    """The answer to "this was not me" (from the flash; without one, the start page)."""
    done = (take_flash(request, NOT_ME_DONE) or {}).get("done")
    if done not in ("cancelled", "recorded", "invalid"):
        return RedirectResponse("/portal", status_code=303)
    status = 404 if done == "invalid" else 200
    return page(request, "portal/not_me.html.j2", {"done": done}, status=status, here="/portal")
