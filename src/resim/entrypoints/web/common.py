"""What every page module needs: the visitor's locale, form bodies, static files.

Forms post ``application/x-www-form-urlencoded`` (no JavaScript, no file
uploads), parsed here with the standard library, bounded in size.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from resim.entrypoints.api.access import allow
from resim.entrypoints.web.i18n import LANG_COOKIE, choose_locale

MAX_FORM_BYTES = 16 * 1024
STATIC_DIR = Path(str(resources.files("resim.entrypoints.web") / "static"))


def locale_of(request: Request) -> str:
    """The page language: ``?lang=``, the ``lang`` cookie, Accept-Language, English."""
    return choose_locale(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """An url-encoded form body as a dict (last value wins; trimmed); {} for other types."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormTooLarge("form too large")
    if kind != "application/x-www-form-urlencoded":
        return {}
    text = body.decode("utf-8", errors="replace")
    return {k: v.strip() for k, v in parse_qsl(text, keep_blank_values=True)}


def safe_next(target: str | None, default: str) -> str:
    """A local path to go back to (never another site: no scheme, no //host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target[:300]


def static_router() -> APIRouter:
    """``/static/...``: the pages' CSS and optional JS, served by Starlette's
    StaticFiles (ETag, 304s) behind a route that declares its callers, as
    every route must (see ``access.allow``; a bare Mount declares nothing)."""
    files = StaticFiles(directory=STATIC_DIR)
    router = APIRouter(include_in_schema=False)

    @router.get("/static/{name}", dependencies=[allow("anyone")])
    async def static(name: str, request: Request) -> Response:
        response = await files.get_response(name, request.scope)
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return router


def language_router(default_next: str = "/portal") -> APIRouter:
    """``GET /language?lang=da&next=/portal/...``: the switcher's links. Keeps the
    choice in the ``lang`` cookie and goes back to ``next`` (a local path)."""
    from starlette.responses import RedirectResponse

    from resim.entrypoints.web.i18n import LOCALES
    from resim.entrypoints.web.templating import remember_locale

    router = APIRouter(include_in_schema=False)

    @router.get("/language", dependencies=[allow("anyone")])
    async def switch_language(request: Request, lang: str = "", next: str = "") -> Response:
        target = safe_next(next, default_next)
        response = RedirectResponse(target, status_code=303)
        if lang in LOCALES:
            remember_locale(request, response, lang)
        return response

    return router
