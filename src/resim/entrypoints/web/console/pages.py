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

Service errors become pages with the HTTP status the API would use, in the
console's own words (:mod:`resim.entrypoints.web.console.refusals`).
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
from resim.entrypoints.web.console.refusals import DOMAIN as DOMAIN
from resim.entrypoints.web.console.refusals import MESSAGES as MESSAGES
from resim.entrypoints.web.console.refusals import N_ as N_
from resim.entrypoints.web.console.refusals import UNKNOWN_REFUSAL as UNKNOWN_REFUSAL
from resim.entrypoints.web.console.refusals import ConsolePageError as ConsolePageError
from resim.entrypoints.web.console.refusals import from_service as from_service
from resim.entrypoints.web.console.refusals import message_of as message_of
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
    Unauthenticated,
)
from resim.services.access.sessions import resolve_bearer
from resim.services.console import dashboard
from resim.services.console.dashboard import Names
from resim.services.context import ServiceContext

COOKIE = "resim_staff"
COOKIE_PATH = "/console"


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
