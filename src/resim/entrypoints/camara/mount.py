"""Putting the CAMARA API into the app: error format, correlator, access, JWKS.

:func:`mount_camara` is called by ``build_app``; the routers of each CAMARA
API (SIM Swap here, subscriptions elsewhere) are included after it and call
:func:`~resim.entrypoints.camara.errors.install_camara_errors` with their own
prefix. ``CamaraRuntime`` is built by the composition root
(``resim.bootstrap.build_camara``); without one the API is mounted closed:
no key verifies, every call is 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from resim.adapters.jwks import StaticJwksSource
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.entrypoints.api.access import allow
from resim.entrypoints.camara.auth import CamaraAccess
from resim.entrypoints.camara.errors import install_camara_errors
from resim.entrypoints.camara.ratelimit import RateLimiter
from resim.entrypoints.camara.simswap import build_simswap_router
from resim.entrypoints.camara.tokens import TokenRules, TokenVerifier
from resim.entrypoints.camara.versions import V2_1, CamaraVersion
from resim.services.camara.simswap import SimSwapQueries
from resim.services.ports import Clock

JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class CamaraRuntime:
    access: CamaraAccess
    issuer: LocalTokenIssuer | None = None  # resim's own issuer: its JWKS is served
    simswap: SimSwapQueries | None = None  # None: the SIM Swap operations answer 503
    version: CamaraVersion = V2_1  # RESIM_CAMARA_VERSION, chosen by the composition root


def closed_runtime(clock: Clock) -> CamaraRuntime:
    """No keys: every token is refused (an app built without CAMARA settings)."""
    verifier = TokenVerifier(
        TokenRules(issuer="unconfigured", audience="unconfigured"),
        StaticJwksSource({"keys": []}),
        clock=clock,
    )
    return CamaraRuntime(CamaraAccess(verifier, RateLimiter(rate=0, burst=1)))


def mount_camara(app: FastAPI, runtime: CamaraRuntime) -> None:
    app.state.camara_access = runtime.access
    app.state.camara_runtime = runtime
    document: dict[str, Any] = runtime.issuer.jwks() if runtime.issuer else {"keys": []}

    @app.get(JWKS_PATH, tags=["camara"], dependencies=[allow("anyone")])
    def jwks() -> dict[str, Any]:
        """Public keys of resim's own token issuer (empty when the operator's
        authorization server issues the tokens)."""
        return document

    install_camara_errors(app, (runtime.version.simswap_prefix + "/",))
    app.include_router(
        build_simswap_router(
            runtime.simswap, getattr(app.state, "metrics_registry", None), runtime.version
        )
    )
