"""What every console page shares: who is signed in, forms with CSRF, rendering, errors.

Who is calling (:func:`staff_page`): the staff session token from the
``resim_staff`` cookie (HttpOnly, SameSite=Strict, path ``/console``), set by
the sign-in page after password + TOTP (:func:`resim.services.access.staff.login`).
An ``Authorization: Bearer`` header is accepted too and wins, so the pages obey
the same rules as the API and the access-matrix test can drive them. Each page
names its callers like an API route (``staff_page("agent")``, recorded in
``__resim_access__``); nobody signed in gets 401 (a sign-in link), a signed-in
caller of another role 403.

CSRF: every POST form carries the signed double-submit token of
:mod:`resim.entrypoints.web.csrf`. It is checked when the browser's cookie
authenticates the caller (or nobody: the sign-in form); a bearer header is
never sent by a browser on its own, so a request carrying one needs no token.
A refused token is 400 with a "reload the page" message (not 403: the caller
may be allowed, the form is stale).

Service errors become pages with the HTTP status the API would use; messages
the console knows by code are translated (:data:`MESSAGES`), others are a
translated "could not be done" with the code (never the service's English).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from resim.entrypoints.api.access import Principal, _check_rules
from resim.entrypoints.api.forwarded import source_address
from resim.entrypoints.web.common import FormTooLarge, locale_of, read_form, safe_next
from resim.entrypoints.web.console.words import Words
from resim.entrypoints.web.csrf import (
    CSRF_FIELD,
    CsrfError,
    check_csrf,
    csrf_token,
    set_csrf_cookie,
)
from resim.entrypoints.web.i18n import translations
from resim.entrypoints.web.templating import render
from resim.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Refused,
    ResimError,
    TooManyAttempts,
    Unauthenticated,
    VerificationFailed,
)
from resim.services.access.sessions import resolve_bearer
from resim.services.console import dashboard
from resim.services.console.dashboard import Names
from resim.services.context import ServiceContext

DOMAIN = "console"
COOKIE = "resim_staff"
COOKIE_PATH = "/console"


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated when shown."""
    return message


# Known refusals, by the services' error codes, in the console's words.
MESSAGES: dict[str, str] = {
    "LOGIN_FAILED": N_("The username, password or code is not correct."),
    "IDENTITY_CHECK_REQUIRED": N_("Check the customer's ID document for this line first."),
    "SELF_REVIEW": N_("You cannot approve or reject a request you created yourself."),
    "DUPLICATE_APPROVAL": N_(
        "You have already approved this request. A second reviewer must decide."
    ),
    "NOT_IN_REVIEW": N_("This request is not waiting for review."),
    "ICCID_INVALID": N_(
        "That ICCID is not valid: it must be 18 to 20 digits, start with 89 and end with "
        "the right check digit."
    ),
    "ICCID_UNKNOWN": N_("No SIM card has that ICCID."),
    "SIM_NOT_AVAILABLE": N_("That card cannot be used: it is not an unused card of this brand."),
    "NOT_PHYSICAL": N_("This request is for an eSIM, not a card."),
    "NOT_PICKUP": N_("This card goes to the customer by courier, not over the counter."),
    "NOT_AWAITING_HANDOVER": N_("This request is not approved and waiting for a card."),
    "COOLING_OFF": N_("The cooling-off period has not ended yet."),
    "LINE_NOT_FOUND": N_("No line has that phone number."),
    "REQUEST_NOT_FOUND": N_("No replacement request has that id."),
    "REQUEST_ALREADY_OPEN": N_("This line already has an open replacement request."),
    "LINE_LOCKED": N_("The customer turned on the SIM-change lock for this line."),
    "LINE_HAS_NO_SIM": N_(
        "This number has no SIM yet (reserved, or ported in and not activated): "
        "there is nothing to replace."
    ),
    "TOO_MANY_ATTEMPTS": N_("Too many requests or attempts. Try again later."),
    "INVALID_DOCUMENT_TYPE": N_("Choose the type of document."),
    "INVALID_LAST_DIGITS": N_("Enter exactly the last 4 digits of the document number."),
    "FILL_IN": N_("Fill in your username, password and code."),
    "CHOOSE_REASON_FORM": N_("Choose a reason and a SIM type."),
    "CHOOSE_DECISION": N_("Choose approve or reject."),
    "CSRF": N_("This form has expired. Reload the page and try again."),
    "SIGN_IN": N_("Sign in to use the console."),
    "FORBIDDEN": N_("Your role does not allow this page."),
    "FORM_TOO_LARGE": N_("The form is too large."),
    "NOT_FOUND": N_("Not found."),
    # Issue 12: the refusals an agent or reviewer can meet when acting.
    "ACCOUNT_FROZEN": N_(
        "New SIMs cannot be requested for this account: it is frozen until a fraud reviewer "
        "unfreezes it."
    ),
    "NOT_FROZEN": N_("This account is not frozen."),
    "REASON_REQUIRED": N_("Give the reason for unfreezing the account."),
    "REASON_TOO_LONG": N_("The reason is too long: at most 500 characters."),
    "SAME_REVIEWER": N_(
        "You already approved unfreezing this account. A second reviewer must approve."
    ),
    "NOT_PENDING": N_(
        "Only a request still waiting for the customer's verification can be taken over."
    ),
    "ID_CHECK_NOT_ENOUGH": N_(
        "This brand does not accept an ID-document check alone for this request."
    ),
    "NO_HANDOVER_SCREEN": N_(
        "Only an eSIM request an agent opened or took over is shown on the hand-over screen."
    ),
    "NOT_YOUR_SCREEN": N_("Only the console session that opened this request shows its eSIM."),
    "HANDOFF_BY_EMAIL": N_("This brand sends the eSIM link to the customer's e-mail."),
    "ACTIVATION_NOT_AVAILABLE": N_("The eSIM is not ready, or its code was used or withdrawn."),
    "REQUEST_CLOSED": N_("This request has already ended."),
    "ALREADY_INSTALLED": N_(
        "The new eSIM is already installed; the number is moving to it and the request "
        "cannot be cancelled."
    ),
    "SECOND_PERSON_REQUIRED": N_(
        "You opened or verified this request, so another person must do this step."
    ),
    "NOT_AWAITING_VERIFICATION": N_("This request is not waiting for verification."),
    "NOT_AWAITING_STEP_UP": N_("This request is not waiting for a stronger verification."),
    "VERIFICATION_FAILED": N_("The verification did not succeed."),
    "NO_VERIFICATION_METHOD": N_(
        "No verification method on file fits this channel; check the customer's ID document."
    ),
    "DELIVERY_MODE_NOT_OFFERED": N_("This brand does not offer that delivery."),
    "AGENT_RATE_LIMIT": N_("You opened as many requests this hour as the brand allows."),
    "SIM_CHANGE_LOCKED": N_("The customer turned on the SIM-change lock for this line."),
    "REJECT_REASON_REQUIRED": N_(
        "Give the reason for rejecting: the customer's request ends and the reason is recorded."
    ),
    "REJECT_CONFIRM": N_("Tick the box to confirm that you reject this request."),
    "QUEUE_FILTER": N_(
        "The review queue cannot show this: a brand, channel or reason in the address is "
        "not valid. Choose them again on the queue."
    ),
    # Issue 14: the ID check compares the document with the account.
    "ID_NO_MATCH": N_(
        "No match: what you read off the document does not match the account. The "
        "customer's details stay hidden. Check the document again."
    ),
    "INVALID_NAME": N_("Type the holder's name as printed on the document."),
    "INVALID_BIRTH_DATE": N_("Type the holder's birth date as printed on the document."),
    "NO_RECEIPT": N_("No card was handed over for this request, so there is no receipt."),
    # Issue 12: loss reports on the line page.
    "NOT_BLOCKED": N_("The SIM of this line is not blocked."),
    "NO_SIM": N_("This line has no SIM to block."),
    "INVALID_REASON": N_("Choose lost or stolen."),
    "DASHBOARD_QUERY": N_(
        "The dashboard cannot show this: a period, brand, channel, figure or day in the "
        "address is not valid. Choose them again on the dashboard."
    ),
}


class ConsolePageError(Exception):
    """Render an error page with ``status``; ``code`` picks a translated message."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


def _status_of(exc: ResimError) -> int:
    for kind, status in (
        (Unauthenticated, 401),
        (PermissionDenied, 403),
        (NotFound, 404),
        (TooManyAttempts, 429),
        (InvalidInput, 400),
        (VerificationFailed, 400),
        (Refused, 409),
        (Conflict, 409),
    ):
        if isinstance(exc, kind):
            return status
    return 500


def from_service(exc: ResimError) -> ConsolePageError:
    code = exc.code or ""
    if isinstance(exc, TooManyAttempts):
        code = "TOO_MANY_ATTEMPTS"
    return ConsolePageError(_status_of(exc), code, exc.message)


# A refusal the console has no words of its own for: said in the caller's language
# with its code for support, never as the service's English (issue 12).
UNKNOWN_REFUSAL = N_("This could not be done (reason code %(code)s).")


def message_of(locale: str, code: str, fallback: str) -> str:
    """The console's words for ``code`` in ``locale``; ``fallback`` (the service's
    English) is never shown: an unknown code gets :data:`UNKNOWN_REFUSAL`."""
    del fallback
    gettext = translations(DOMAIN, locale).gettext
    text = MESSAGES.get(code)
    if text:
        return gettext(text)
    return gettext(UNKNOWN_REFUSAL) % {"code": code or "-"}


@dataclass(frozen=True)
class Caller:
    """The caller of a console page; ``via_cookie``: authenticated by the browser's cookie.

    ``names``: for staff, the brands (name, time zone) and the staff members'
    display names their scope may see, for the header and for showing people
    and times in words (issue 14.1)."""

    principal: Principal
    via_cookie: bool
    names: Names | None = None

    @property
    def display_name(self) -> str:
        if self.names is None or self.principal.kind != "staff":
            return ""
        return self.names.staff.get(self.principal.actor, "")

    @property
    def brand_name(self) -> str | None:
        """The caller's brand's name; None for operator-wide staff."""
        brand = self.principal.brand_id
        return None if self.names is None or brand is None else self.names.brand(brand)

    def zone_for(self, brand_id: str | None = None) -> str:
        """The time zone a page shows times in: the caller's brand's; for operator-wide
        staff the brand of the object shown (``brand_id``), else UTC."""
        if self.names is None:
            return "UTC"
        return self.names.zone_of(self.principal.brand_id or brand_id)

    @property
    def role(self) -> str | None:
        return self.principal.role

    @property
    def staff_id(self) -> str:
        assert self.principal.id is not None
        return self.principal.id


def staff_page(*rules: str) -> Any:
    """A dependency admitting callers that match any of ``rules`` (as ``access.allow``)."""
    _check_rules(rules)

    def dependency(request: Request) -> Caller:
        source_ip = source_address(request)
        header = request.headers.get("authorization")
        token, via_cookie = None, False
        if header is not None:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise ConsolePageError(401, "SIGN_IN")
            token = value.strip()
        elif request.cookies.get(COOKIE):
            token, via_cookie = request.cookies[COOKIE], True
        principal = Principal(kind="anonymous", source_ip=source_ip)
        if token is not None:
            ctx: ServiceContext = request.app.state.ctx
            try:
                who = resolve_bearer(ctx, token)
            except Unauthenticated:
                raise ConsolePageError(401, "SIGN_IN") from None
            principal = Principal(
                kind=who.kind,
                id=who.id,
                role=who.role,
                scopes=who.scopes,
                line_id=who.line_id,
                request_id=who.request_id,
                brand_id=who.brand_id,
                source_ip=source_ip,
                session_id=who.session_id,
            )
        if any(principal.satisfies(rule) for rule in rules):
            names = None
            if principal.kind == "staff":
                names = dashboard.names(request.app.state.ctx, scope=principal.scope)
            return Caller(principal, via_cookie, names)
        if principal.kind == "anonymous":
            raise ConsolePageError(401, "SIGN_IN")
        raise ConsolePageError(403, "FORBIDDEN")

    dependency.__resim_access__ = rules  # type: ignore[attr-defined]
    fn: Callable[[Request], Caller] = dependency
    return Depends(fn)


def ctx_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def posted(request: Request, caller: Caller) -> dict[str, str]:
    """The form, after the CSRF check (skipped for bearer-authenticated callers)."""
    try:
        form = await read_form(request)
    except FormTooLarge:
        raise ConsolePageError(413, "FORM_TOO_LARGE", "form too large") from None
    if caller.via_cookie or caller.principal.kind == "anonymous":
        try:
            check_csrf(request, ctx_of(request).otp_pepper, form.get(CSRF_FIELD))
        except CsrfError:
            raise ConsolePageError(400, "CSRF") from None
    return form


def page(
    request: Request,
    caller: Caller | None,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    zone_brand: str | None = None,
) -> HTMLResponse:
    """Render ``console/<template>`` with the form token, the caller's role and nav.

    Times are shown in ``zone`` (:meth:`Caller.zone_for`; ``zone_brand``: the brand
    of the object the page shows); ``words`` says codes and people in words."""
    token, new_nonce = csrf_token(request, ctx_of(request).otp_pepper)
    locale = locale_of(request)
    signed_in = caller is not None and caller.principal.kind == "staff"
    names = caller.names if caller is not None else None
    values = {
        "site_name": "resim console",
        "home_url": "/console",
        "csrf_token": token,
        "role": caller.role if caller else None,
        "signed_in": signed_in,
        "me": caller if signed_in else None,
        "zone": caller.zone_for(zone_brand) if caller is not None else "UTC",
        "words": Words(translations(DOMAIN, locale), dict(names.staff) if names else {}),
        **context,
    }
    response = render(
        request,
        domain=DOMAIN,
        locale=locale,
        template=f"console/{template}",
        context=values,
        status=status,
    )
    set_csrf_cookie(request, response, new_nonce)
    return response


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back to the console page asked for after signing in."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or wanted in ("/console", "/console/login"):
        return "/console/login"
    return f"/console/login?{urlencode({'next': wanted})}"


def next_page(target: str | None) -> str:
    """Where to go after signing in: a console page (never another site or path)."""
    chosen = safe_next(target, "/console")
    if chosen != "/console" and not chosen.startswith(("/console/", "/console?")):
        return "/console"
    return "/console" if chosen.startswith("/console/login") else chosen


def page_error_handler(request: Request, exc: ConsolePageError) -> Response:
    """The console's error page. A browser (it asks for HTML) that is not signed in
    and opens a page is sent to the sign-in page (303), which brings it back; other
    callers (API clients, scripts) get the 401 page with a sign-in link."""
    if (
        exc.status == 401
        and request.method == "GET"
        and "authorization" not in request.headers
        and "text/html" in request.headers.get("accept", "")
    ):
        return RedirectResponse(sign_in_url(request), status_code=303)
    locale = locale_of(request)
    return page(
        request,
        None,
        "error.html.j2",
        {
            "status": exc.status,
            "message": message_of(locale, exc.code, exc.message),
            "sign_in": sign_in_url(request) if exc.status == 401 else None,
        },
        status=exc.status,
    )
