"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their assets served by resim itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a network
without internet (an operator's back office, a demo on a train) they are
blank. The assets come from the PyPI package ``fastapi-offline`` (a runtime
dependency: it ships ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
``redoc.standalone.js``); resim only reads its files and serves them here.

Asset URLs carry the package's version (``/docs/assets/<version>/<name>``), so
they can be cached for a year: a new release of the package is a new URL. A
request for another version or a name not in :data:`ASSETS` is 404.
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from resim.entrypoints.api.access import allow

PACKAGE = "fastapi_offline"
ASSETS_VERSION = metadata.version("fastapi-offline")
ASSETS_PREFIX = f"/docs/assets/{ASSETS_VERSION}"
# name -> media type: only these files are served, whatever else the package holds
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
LONG_CACHE = "public, max-age=31536000, immutable"
# The pages may load and call nothing but this server. ReDoc's sidebar shows a
# logo from its vendor's CDN (no option turns it off; it hides itself when the
# image fails): img-src keeps the browser from even asking. Swagger UI starts
# from an inline script and ReDoc styles itself inline; ReDoc searches in a
# blob: worker.
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
# Swagger UI would otherwise send the spec to validator.swagger.io for its badge.
SWAGGER_PARAMETERS = {"validatorUrl": None}


def _asset_dir() -> Path:
    return Path(str(resources.files(PACKAGE) / "static"))


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets to ``app``.

    The app must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    """
    directory = _asset_dir()
    cache: dict[str, bytes] = {}
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PREFIX}/{name}"

    @router.get("/docs", dependencies=[allow("anyone")])
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _confined(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=asset(request, "swagger-ui-bundle.js"),
                swagger_css_url=asset(request, "swagger-ui.css"),
                swagger_favicon_url=asset(request, "favicon.png"),
                oauth2_redirect_url=f"{root}{redirect_url}",
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @router.get(redirect_url, dependencies=[allow("anyone")])
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc", dependencies=[allow("anyone")])
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _confined(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=asset(request, "redoc.standalone.js"),
                redoc_favicon_url=asset(request, "favicon.png"),
                with_google_fonts=False,
            )
        )

    @router.get("/docs/assets/{version}/{name}", dependencies=[allow("anyone")])
    def docs_asset(version: str, name: str) -> Response:
        if version != ASSETS_VERSION or name not in ASSETS:
            raise HTTPException(404)
        if name not in cache:  # a few MB, read once per process
            cache[name] = (directory / name).read_bytes()
        return Response(
            cache[name],
            media_type=ASSETS[name],
            headers={"Cache-Control": LONG_CACHE, "X-Content-Type-Options": "nosniff"},
        )

    app.include_router(router)
