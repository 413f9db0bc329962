"""The FastAPI application: BSS REST API, ES2+ callback, customer portal, health, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from resim import __version__
from resim.adapters.db.migrate import head_revision
from resim.adapters.es2.peers import CertificatePeers
from resim.adapters.events.capture import SinkCapture
from resim.entrypoints.api import (
    routes_agents,
    routes_identity,
    routes_lines,
    routes_loss,
    routes_public,
    routes_requests,
    routes_verification,
)
from resim.entrypoints.api.access import allow, declared
from resim.entrypoints.api.bodylimit import DEFAULT_LIMIT, BodyLimitMiddleware, route_limits
from resim.entrypoints.api.docs import install_docs
from resim.entrypoints.api.errors import install_error_handlers
from resim.entrypoints.api.forwarded import ProxyHeadersMiddleware, networks
from resim.entrypoints.api.metrics import install_metrics
from resim.entrypoints.camara.mount import CamaraRuntime, closed_runtime, mount_camara
from resim.entrypoints.camara.subscriptions import demo_events_router, install_subscriptions
from resim.entrypoints.es2_callback import CallbackAuth, build_es2_callback_router
from resim.entrypoints.web import (
    common,
    portal,
    portal_brand,
    portal_continue,
    portal_loss,
    portal_status,
    portal_verify,
)
from resim.entrypoints.web.console import install_console
from resim.entrypoints.web.portal_demo import install_demo_phone
from resim.services.access.credentials import CredentialReader
from resim.services.context import ServiceContext
from resim.services.cutover.cutover import handle_download_progress


@dataclass
class ApiConfig:
    smdp_id: str = "smdp-emulator"
    callback_token: str = ""
    # ES2+ callbacks by client certificate (mutual TLS); set: the token is not accepted
    callback_certificates: CertificatePeers | None = None
    mail_capture_dir: Path | None = None
    sms_capture_dir: Path | None = None
    # CAMARA token verification and limits (bootstrap.build_camara); None: closed (all 401)
    camara: CamaraRuntime | None = field(default=None)
    bench_endpoints: bool = False  # POST /bench/noop, the CAMARA benchmark's baseline
    sink_capture: SinkCapture | None = None  # the demo's loopback CAMARA sink (/demo/events)
    # The HTTP edge (RESIM_MAX_BODY_BYTES, RESIM_TRUSTED_PROXIES, RESIM_METRICS_TOKEN)
    max_body_bytes: int = DEFAULT_LIMIT
    trusted_proxies: tuple[str, ...] = ()
    metrics_token: str = ""  # empty: /metrics answers loopback callers only
    # `resim demo` only: its built-in SM-DP+ emulator, for the portal's "simulate the
    # phone" button (resim.entrypoints.web.portal_demo); empty everywhere else
    demo_phone_url: str = ""
    # Bearer credentials read outside a transaction (bootstrap: on the CAMARA read
    # engine); None: resolved in a unit of work (services.access.sessions)
    credentials: CredentialReader | None = None


def build_app(ctx: ServiceContext, config: ApiConfig) -> FastAPI:
    app = FastAPI(
        title="resim",
        version=__version__,
        description="Safe SIM and eSIM replacement: the BSS integration API.",
        docs_url=None,  # install_docs serves /docs and /redoc with local assets
        redoc_url=None,
    )
    app.state.ctx = ctx  # also where access.authenticate resolves credentials
    app.state.credentials = config.credentials
    # Middleware added first runs innermost: the body limit sits inside the
    # metrics (its 413s are counted) and the proxy headers outside everything.
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=config.max_body_bytes,
        limits=route_limits(),
        camara_prefixes=lambda: getattr(app.state, "camara_prefixes", ()),
    )
    install_error_handlers(app)
    install_metrics(app, ctx, token=config.metrics_token)
    camara = config.camara or closed_runtime(ctx.clock)
    mount_camara(app, camara)

    authenticate = CallbackAuth(
        certificates=config.callback_certificates,
        token=config.callback_token,
        token_requester=config.smdp_id,
    )
    app.include_router(
        build_es2_callback_router(
            lambda progress, peer: handle_download_progress(
                ctx, progress, brands=peer.brands, via=peer.via
            ),
            authenticate,
        ),
        dependencies=[declared("smdp")],
    )
    app.include_router(routes_requests.router)
    app.include_router(routes_lines.router)
    app.include_router(routes_loss.router)
    app.include_router(routes_agents.router)
    app.include_router(routes_verification.router)
    app.include_router(routes_identity.router)
    app.include_router(common.static_router())
    app.include_router(portal.router)
    app.include_router(portal_verify.router)
    app.include_router(portal_loss.router)
    app.include_router(portal_brand.router)
    app.include_router(portal_status.router)
    app.include_router(portal_continue.router)
    install_subscriptions(app, camara.version)
    if config.sink_capture is not None:
        app.include_router(demo_events_router(config.sink_capture))
    if config.demo_phone_url:
        install_demo_phone(app, config.demo_phone_url)
    if config.mail_capture_dir is not None:
        app.include_router(routes_public.mailbox_router(config.mail_capture_dir))
    if config.sms_capture_dir is not None:
        app.include_router(routes_public.smsbox_router(config.sms_capture_dir))
    install_console(app)  # the agent console's pages (issue 5)
    install_docs(app)  # Swagger UI and ReDoc without a CDN (issue 14.6)
    app.add_middleware(ProxyHeadersMiddleware, trusted=networks(config.trusted_proxies))

    if config.bench_endpoints:
        # declared, not allow(): resolving the bench's CAMARA token as a BSS
        # credential would be work (and a 401); the baseline does none.
        # async and pre-rendered, like the CAMARA handlers: the cheapest route
        # this stack can serve.
        @app.post("/bench/noop", tags=["ops"], dependencies=[declared("anyone")])
        async def noop() -> Response:
            """The CAMARA benchmark's baseline: the same server, no work (RESIM_BENCH_ENDPOINTS)."""
            return Response(b'{"ok":true}', media_type="application/json")

    @app.get("/health", tags=["ops"], dependencies=[allow("anyone")])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["ops"],
        responses={503: {"description": "not ready"}},
        dependencies=[allow("anyone")],
    )
    def ready() -> JSONResponse:
        """Readiness: the database answers and is migrated to this version's schema."""
        try:
            with ctx.uow() as uow:
                uow.session.execute(sa.text("SELECT 1"))
                current = uow.session.execute(
                    sa.text("SELECT version_num FROM alembic_version")
                ).scalar()
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        if current != head_revision():
            return JSONResponse({"status": "unavailable", "database": "not migrated"}, 503)
        return JSONResponse({"status": "ready"})

    return app
