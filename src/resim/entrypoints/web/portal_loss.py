"""The customer portal's loss pages (issue 12): "Block my SIM now" and "I found my phone".

Thin: parse the form, call :mod:`resim.services.locks.loss`, redirect (POST ->
303 -> GET) or show the page again with what went wrong.

* ``GET /portal/lost``: the number, then either "E-mail me a code" (``POST
  /portal/lost/code``, answered alike for every number: ``GET
  /portal/lost/sent``) or the PIN or password at once (``POST /portal/lost``;
  a wrong secret and an unknown number get the same answer).
* ``GET /portal/lost/{line_id}``: the page the code mail links to. Blocked:
  the status, and "I found my phone" (the e-mail code plus the PIN or
  password, ``POST .../found``). Not blocked: "Block my SIM now" (``POST
  /portal/lost/{line_id}``). ``POST .../code`` mails a code for either.

The page shows the number masked; a line id in a link proves nothing, which
is why every change needs the customer's own factors.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.domain.identifiers import normalize_msisdn
from resim.domain.loss import LossChannel
from resim.entrypoints.api.access import allow
from resim.entrypoints.web.portal import checked_form, ctx_of, page, source_ip
from resim.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ResimError,
    TooManyAttempts,
    VerificationFailed,
)
from resim.services.locks import loss
from resim.services.verification.verification import Evidence

router = APIRouter(prefix="/portal/lost", include_in_schema=False, dependencies=[allow("anyone")])

SECRETS = ("otp", "pin", "password", "totp")
FIELD_OF = {"email_otp": "otp", "pin": "pin", "password": "password", "totp": "totp"}


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def problem_of(exc: ResimError) -> tuple[str, int]:
    """(what the page says, status) for a service error; never the English message."""
    if isinstance(exc, TooManyAttempts):
        return "too_many", 429
    if isinstance(exc, VerificationFailed):
        return ("code_expired" if exc.code == "OTP_EXPIRED" else "confirm_failed"), 400
    if isinstance(exc, InvalidInput):
        known = {"VERIFICATION_INCOMPLETE": "incomplete", "INVALID_REASON": "reason"}
        return known.get(exc.code or "", "number"), 422
    if isinstance(exc, Conflict):
        return ("no_sim" if exc.code == "NO_SIM" else "not_blocked"), 409
    if isinstance(exc, NotFound):
        return "confirm_failed", 400  # an unknown number looks like a wrong secret
    return "generic", 400


def _methods(combos: tuple[tuple[str, ...], ...]) -> list[str]:
    """The form fields to show: every method of the offered combinations, in order."""
    seen: list[str] = []
    for combo in combos:
        for method in combo:
            if method in FIELD_OF and method not in seen:
                seen.append(method)
    return seen


@router.get("")
async def start_page(request: Request) -> Response:
    return page(
        request, "portal/lost.html.j2", {"msisdn": "", "problem": None}, here="/portal/lost"
    )


async def _start_again(request: Request, msisdn: str, problem: str, status: int) -> Response:
    values = {"msisdn": msisdn[:40], "problem": problem}
    return page(request, "portal/lost.html.j2", values, status=status, here="/portal/lost")


@router.post("/code")
async def code_by_number(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return await _start_again(request, "", "form_expired", 400)
    raw = form.get("msisdn", "")
    try:
        number = normalize_msisdn(raw)
    except InvalidInput:
        return await _start_again(request, raw, "number", 422)
    ctx, ip = ctx_of(request), source_ip(request)

    def run() -> None:
        # every number gets the same answer (an unknown one included)
        with contextlib.suppress(ResimError):
            loss.send_code(ctx, msisdn=number, source_ip=ip)

    await run_in_threadpool(run)
    return _see("/portal/lost/sent")


@router.get("/sent")
async def sent_page(request: Request) -> Response:
    return page(request, "portal/lost_sent.html.j2", {}, here="/portal/lost")


@router.post("")
async def block_by_number(request: Request) -> Response:
    """The PIN or password at once, without waiting for a mail."""
    form = await checked_form(request)
    if form is None:
        return await _start_again(request, "", "form_expired", 400)
    raw = form.get("msisdn", "")
    try:
        number = normalize_msisdn(raw)
    except InvalidInput:
        return await _start_again(request, raw, "number", 422)
    secret = form.get("secret", "")[:200]
    kind = form.get("secret_kind", "pin")
    evidence = Evidence(password=secret) if kind == "password" else Evidence(pin=secret)
    ctx, ip = ctx_of(request), source_ip(request)
    reason = form.get("reason", "lost")

    def run() -> str:
        status, _ = loss.report(
            ctx,
            msisdn=number,
            reason=reason,
            channel=LossChannel.PORTAL,
            actor="customer",
            evidence=evidence,
            source_ip=ip,
        )
        return status.line_id

    try:
        line_id = await run_in_threadpool(run)
    except ResimError as exc:
        problem, status = problem_of(exc)
        if problem == "incomplete":  # this brand does not take that secret alone
            problem = "confirm_failed"
        return await _start_again(request, raw, problem, status)
    return _see(f"/portal/lost/{line_id}")


async def _line_page(
    request: Request,
    line_id: str,
    *,
    problem: str | None = None,
    status: int = 200,
    sent: bool = False,
) -> Response:
    try:
        state = await run_in_threadpool(loss.status, ctx_of(request), line_id=line_id)
    except ResimError:
        return page(
            request, "portal/lost.html.j2", {"msisdn": "", "problem": "not_found"}, status=404
        )
    values: dict[str, Any] = {
        "loss": state,
        "problem": problem,
        "sent": sent,
        "report_methods": _methods(state.report_combos),
        "lift_methods": _methods(state.lift_combos),
        "mail_for_report": any("email_otp" in c for c in state.report_combos),
        "mail_for_lift": any("email_otp" in c for c in state.lift_combos),
    }
    return page(
        request, "portal/lost_line.html.j2", values, status=status, here=f"/portal/lost/{line_id}"
    )


@router.get("/{line_id}")
async def line_page(line_id: str, request: Request, sent: str | None = None) -> Response:
    return await _line_page(request, line_id[:64], sent=sent == "1")


def _evidence(form: dict[str, str]) -> Evidence:
    given = {name: (form.get(name, "").strip()[:200] or None) for name in SECRETS}
    return Evidence(
        otp=given["otp"], pin=given["pin"], password=given["password"], totp=given["totp"]
    )


@router.post("/{line_id}/code")
async def code_for_line(line_id: str, request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return await _line_page(request, line_id, problem="form_expired", status=400)
    ctx, ip = ctx_of(request), source_ip(request)
    try:
        await run_in_threadpool(lambda: loss.send_code(ctx, line_id=line_id, source_ip=ip))
    except ResimError:
        return await _line_page(request, line_id, problem="generic", status=404)
    return _see(f"/portal/lost/{line_id}?sent=1")


@router.post("/{line_id}")
async def block_line(line_id: str, request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return await _line_page(request, line_id, problem="form_expired", status=400)
    ctx, ip = ctx_of(request), source_ip(request)
    reason = form.get("reason", "lost")
    evidence = _evidence(form)

    def run() -> None:
        loss.report(
            ctx,
            line_id=line_id,
            reason=reason,
            channel=LossChannel.PORTAL,
            actor="customer",
            evidence=evidence,
            source_ip=ip,
        )

    try:
        await run_in_threadpool(run)
    except ResimError as exc:
        problem, status = problem_of(exc)
        return await _line_page(request, line_id, problem=problem, status=status)
    return _see(f"/portal/lost/{line_id}")


@router.post("/{line_id}/found")
async def found_phone(line_id: str, request: Request) -> Response:
    """ "I found my phone": strong verification only (the service checks the policy)."""
    form = await checked_form(request)
    if form is None:
        return await _line_page(request, line_id, problem="form_expired", status=400)
    ctx, ip = ctx_of(request), source_ip(request)
    evidence = _evidence(form)
    try:
        await run_in_threadpool(
            lambda: loss.lift(
                ctx, line_id=line_id, actor="customer", evidence=evidence, source_ip=ip
            )
        )
    except ResimError as exc:
        problem, status = problem_of(exc)
        return await _line_page(request, line_id, problem=problem, status=status)
    return _see(f"/portal/lost/{line_id}")
