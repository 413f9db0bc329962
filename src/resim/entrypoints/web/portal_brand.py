"""The brand on the portal's pages: its logo and colours, and the language switch
that keeps what the customer typed.

* ``GET /portal/brand/{id}/logo.svg``: the brand's logo from its policy
  (validated when stored: shapes and text only). Served as an image with a
  Content-Security-Policy that forbids scripts and sandboxes the document, in
  case someone opens it as a page.
* ``GET /portal/brand/{id}/style.css``: the brand's colours as CSS custom
  properties. The pages' own policy allows no inline styles, so the colours
  come as a stylesheet; ``?v=`` changes with them, so it is cached for a day.
* ``POST /portal/language``: the language buttons of a page with a number form
  post that form here: the chosen language is remembered (the ``lang``
  cookie) and so is the typed number, for ten minutes, in an HttpOnly cookie
  of its own, which the start page reads back. A number in the address would
  end up in browser history and server logs.

Before the number is known the portal wears the operator's neutral look; a
page shows a brand only once its number (or request) tells which.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from resim.entrypoints.api.access import allow
from resim.entrypoints.web.i18n import LOCALES
from resim.entrypoints.web.templating import remember_locale
from resim.services.context import ServiceContext
from resim.services.notifications import brand_look

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[allow("anyone")])

TYPED_COOKIE = "resim_typed_number"
TYPED_MAX_AGE = 600
_LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def look(request: Request, brand_id: str | None) -> brand_look.BrandLook | None:
    """The brand's look for a page (blocking: call in a thread), or None."""
    return brand_look.brand_look(_ctx(request), brand_id) if brand_id else None


@router.get("/brand/{brand_id}/logo.svg")
async def logo(brand_id: str, request: Request) -> Response:
    svg = await run_in_threadpool(brand_look.brand_logo, _ctx(request), brand_id)
    if svg is None:
        return Response(status_code=404)
    headers = {**_cached(), "Content-Security-Policy": _LOGO_POLICY}
    return Response(svg, media_type="image/svg+xml", headers=headers)


@router.get("/brand/{brand_id}/style.css")
async def style(brand_id: str, request: Request) -> Response:
    found = await run_in_threadpool(look, request, brand_id)
    if found is None:
        return Response("/* no such brand */\n", status_code=404, media_type="text/css")
    css = (
        ":root {"
        f" --accent: {found.colour}; --accent-ink: {found.text_colour};"
        " }\n"
        ".site-header { border-top: .4rem solid var(--accent); }\n"
    )
    return Response(css, media_type="text/css", headers=_cached())


@router.post("/language")
async def switch_language(request: Request) -> Response:
    """A language button of a form page: remember the language and the typed number."""
    from resim.entrypoints.web.portal import checked_form

    form = await checked_form(request)
    response = RedirectResponse("/portal", status_code=303)
    if form is None:
        return response
    lang = form.get("lang", "")
    if lang in LOCALES:
        remember_locale(request, response, lang)
    typed = form.get("msisdn", "")[:40]
    if typed and all(ch.isdigit() or ch in " +-()./" for ch in typed):
        response.set_cookie(
            TYPED_COOKIE,
            typed,
            max_age=TYPED_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/portal",
        )
    return response


def typed_number(request: Request) -> str:
    """The number the customer typed before switching language, or ""."""
    value = request.cookies.get(TYPED_COOKIE, "")[:40]
    return value if all(ch.isdigit() or ch in " +-()./" for ch in value) else ""


def _cached() -> dict[str, str]:
    return {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
