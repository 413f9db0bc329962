"""CAMARA SIM Swap subscriptions 0.3.0 over HTTP: ``/sim-swap-subscriptions/v0.3``.

Thin: take the caller from the access token, call one use case of
``resim.services.camara.camara_subscriptions``, render. Scopes, per the spec's
``security`` sections:

==========================================  ===================================================
POST   /subscriptions                       sim-swap-subscriptions:org.camaraproject.
                                            sim-swap-subscriptions.v0.swapped:create
GET    /subscriptions, /subscriptions/{id}  sim-swap-subscriptions:read
DELETE /subscriptions/{id}                  sim-swap-subscriptions:delete
==========================================  ===================================================

Creation and deletion are synchronous (201 with the ACTIVE subscription;
204). Service errors carry the spec's code; :data:`STATUS` gives its status.

The base path, the served document and the 0.4 rules (``RESIM_CAMARA_VERSION=2.2``:
strict bodies, UNSUPPORTED_IDENTIFIER, INVALID_TOKEN_CONTEXT, a paginated list)
come from the :class:`~resim.entrypoints.camara.versions.CamaraVersion` the
composition root chose; :data:`PREFIX` and :data:`SPEC` are 0.3.0's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from resim.adapters.events.capture import SinkCapture, render_events_html
from resim.entrypoints.api.access import allow
from resim.entrypoints.camara.auth import CamaraCaller, camara_caller
from resim.entrypoints.camara.errors import CamaraError, install_camara_errors
from resim.entrypoints.camara.versions import V2_1, CamaraVersion
from resim.errors import ResimError
from resim.services.camara import camara_subscriptions as subs
from resim.services.context import ServiceContext

PREFIX = V2_1.subscriptions_prefix
SCOPE_CREATE = "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create"
SCOPE_READ = "sim-swap-subscriptions:read"
SCOPE_DELETE = "sim-swap-subscriptions:delete"

# The spec's error codes and their statuses; any other code of a service error is 400.
STATUS = {
    "MISSING_IDENTIFIER": 422,
    "UNNECESSARY_IDENTIFIER": 422,
    "SERVICE_NOT_APPLICABLE": 422,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "UNSUPPORTED_IDENTIFIER": 422,  # 0.4
    "INVALID_TOKEN_CONTEXT": 403,  # 0.4
}
BAD_REQUEST_CODES = frozenset(
    {
        "INVALID_ARGUMENT",
        "OUT_OF_RANGE",
        "INVALID_PROTOCOL",
        "INVALID_CREDENTIAL",
        "INVALID_TOKEN",
        "INVALID_SINK",
    }
)

Creator = Annotated[CamaraCaller, camara_caller(frozenset({SCOPE_CREATE}))]
Reader = Annotated[CamaraCaller, camara_caller(frozenset({SCOPE_READ}))]
Deleter = Annotated[CamaraCaller, camara_caller(frozenset({SCOPE_DELETE}))]

SPEC = V2_1.subscriptions_spec


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _page_number(raw: str | None, default: int, highest: int, name: str) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= highest:
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"{name} must be an integer from 1 to {highest}."
        )
    return int(raw)


def _camara(exc: ResimError) -> CamaraError:
    if exc.code in STATUS:
        return CamaraError(STATUS[exc.code], exc.code, exc.message)
    if exc.code in BAD_REQUEST_CODES:
        return CamaraError(400, exc.code, exc.message)
    return CamaraError(400, "INVALID_ARGUMENT", exc.message)


def build_subscriptions_router(version: CamaraVersion = V2_1) -> APIRouter:
    """The four operations at ``version``'s base path, and its document."""
    # The normative document is the spec file (served below), not FastAPI's rendering.
    router = APIRouter(
        prefix=version.subscriptions_prefix, tags=["camara"], include_in_schema=False
    )
    dialect = version.subscriptions
    spec = version.subscriptions_spec.read_bytes()

    def _caller(caller: CamaraCaller) -> subs.Caller:
        return subs.Caller(caller.client_id, caller.phone_number, dialect)

    @router.post("/subscriptions", status_code=201)
    def create_subscription(
        request: Request, caller: Creator, body: Annotated[dict[str, Any], Body()]
    ) -> JSONResponse:
        """Create a SIM swap event subscription (synchronously: 201, ACTIVE)."""
        try:
            view = subs.create_subscription(_ctx(request), caller=_caller(caller), body=body)
        except ResimError as exc:
            raise _camara(exc) from None
        return JSONResponse(view, status_code=201)

    @router.get("/subscriptions")
    def list_subscriptions(request: Request, caller: Reader) -> JSONResponse:
        """The caller's subscriptions (a 3-legged token: those on its number); in 0.4
        a page of them (``page``, ``perPage``) with the pagination block and headers."""
        if not dialect.paginated:
            return JSONResponse(subs.list_subscriptions(_ctx(request), caller=_caller(caller)))
        if not set(request.query_params) <= {"page", "perPage"}:
            raise CamaraError(400, "INVALID_ARGUMENT", "Only page and perPage may be given.")
        page = _page_number(request.query_params.get("page"), 1, 2_147_483_647, "page")
        per_page = _page_number(request.query_params.get("perPage"), 20, 100, "perPage")
        items, total = subs.list_page(
            _ctx(request), caller=_caller(caller), page=page, per_page=per_page
        )
        pages = -(-total // per_page)
        answer = {
            "subscriptions": items,
            "pagination": {
                "page": page,
                "perPage": per_page,
                "totalCount": total,
                "totalPages": pages,
            },
        }
        headers = {"X-Total-Count": str(total), "X-Total-Pages": str(pages)}
        return JSONResponse(answer, headers=headers)

    @router.get("/subscriptions/{subscriptionId}")
    def get_subscription(request: Request, caller: Reader, subscriptionId: str) -> JSONResponse:
        """One of the caller's subscriptions; any other id is 404 NOT_FOUND."""
        try:
            view = subs.get_subscription(
                _ctx(request), caller=_caller(caller), subscription_id=subscriptionId
            )
        except ResimError as exc:
            raise _camara(exc) from None
        return JSONResponse(view)

    @router.delete("/subscriptions/{subscriptionId}", status_code=204)
    def delete_subscription(request: Request, caller: Deleter, subscriptionId: str) -> Response:
        """Delete (synchronously: 204); an active subscription gets its ended event."""
        try:
            subs.delete_subscription(
                _ctx(request), caller=_caller(caller), subscription_id=subscriptionId
            )
        except ResimError as exc:
            raise _camara(exc) from None
        return Response(status_code=204)

    @router.get("/openapi.yaml", dependencies=[allow("anyone")])
    def openapi() -> Response:
        """The normative CAMARA document this API implements (Apache-2.0, see SOURCE.txt)."""
        return Response(spec, media_type="application/yaml")

    return router


def demo_events_router(capture: SinkCapture) -> APIRouter:
    """``/demo/events``: what the demo's loopback sink received (only the demo mounts it)."""
    demo = APIRouter(include_in_schema=False)

    @demo.get("/demo/events", response_class=HTMLResponse, dependencies=[allow("anyone")])
    def events() -> HTMLResponse:
        return HTMLResponse(render_events_html(capture.received(), title="CAMARA events received"))

    return demo


def install_subscriptions(app: FastAPI, version: CamaraVersion = V2_1) -> None:
    """Mount the subscriptions API (after ``mount_camara``), errors in CAMARA's format."""
    app.include_router(build_subscriptions_router(version))
    install_camara_errors(app, (version.subscriptions_prefix,))
