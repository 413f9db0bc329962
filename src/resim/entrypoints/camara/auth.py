"""Who calls the CAMARA API: a relying party with a JWT access token.

Routes take the caller from :func:`camara_caller`::

    caller: Annotated[CamaraCaller, camara_caller(frozenset({"sim-swap:check"}),
                                                  frozenset({"sim-swap"}))]

The dependency (a) reads ``Authorization: Bearer <JWT>`` (missing or not
Bearer: 401 UNAUTHENTICATED), (b) verifies the token with the app's
:class:`~resim.entrypoints.camara.tokens.TokenVerifier` (401 on any defect,
503 when the JWKS cannot be fetched), (c) takes one token from the client's
rate-limit bucket (429 TOO_MANY_REQUESTS with Retry-After), (d) checks the
scopes: the caller needs ALL scopes of at least ONE of the sets (403
PERMISSION_DENIED otherwise), and the required ``dpv:`` purpose if the
operator configured one (403).

The dependency is marked ``__resim_access__ = ("camara",)`` so the access
matrix test (tests/integration/test_access_matrix.py) sees that the route
declares its callers; "camara" admits none of the BSS API's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import Depends, Request

from resim.entrypoints.camara.errors import CamaraError

if TYPE_CHECKING:
    from resim.entrypoints.camara.ratelimit import Limiter
    from resim.entrypoints.camara.tokens import TokenVerifier

ACCESS_RULE = "camara"


@dataclass(frozen=True)
class CamaraCaller:
    client_id: str  # the relying party (token client_id / azp)
    scopes: frozenset[str]
    purpose: str | None  # "dpv:FraudPreventionAndDetection" etc.
    phone_number: str | None  # E.164; set only for 3-legged tokens (bound to one number)
    subject: str | None

    @property
    def three_legged(self) -> bool:
        return self.phone_number is not None


@dataclass
class CamaraAccess:
    """What the CAMARA dependencies need at run time (``app.state.camara_access``)."""

    verifier: TokenVerifier
    limiter: Limiter
    required_purpose: str | None = None


def _access(request: Request) -> CamaraAccess:
    access: CamaraAccess = request.app.state.camara_access
    return access


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise CamaraError.generic(401, "Authorization header with a Bearer access token required.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CamaraError.generic(401, "Authorization header must be: Bearer <access token>.")
    return token.strip()


def camara_caller(*scope_sets: frozenset[str]) -> Any:
    """FastAPI dependency factory: validates the Bearer JWT; the caller needs ALL
    scopes of at least ONE of the sets."""
    if not scope_sets:
        raise ValueError("camara_caller needs at least one scope set")
    sets = tuple(frozenset(s) for s in scope_sets)

    async def dependency(request: Request) -> CamaraCaller:
        access = _access(request)
        token = bearer_token(request)
        caller = access.verifier.cached(token)
        if caller is None:  # a first sight may fetch the JWKS: not on the event loop
            caller = await anyio.to_thread.run_sync(access.verifier.verify, token)
        limiter = access.limiter
        if limiter.shared:  # a database statement that may wait for a lock
            wait = await anyio.to_thread.run_sync(limiter.take, caller.client_id)
        else:
            wait = limiter.take(caller.client_id)
        if wait is not None:
            raise CamaraError(
                429,
                "TOO_MANY_REQUESTS",
                "Rejected due to request rate limit overpassed.",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        if not any(s <= caller.scopes for s in sets):
            raise CamaraError.generic(
                403,
                "Client does not have sufficient permissions to perform this action: needs scope "
                + " or ".join(" + ".join(sorted(s)) for s in sets)
                + ".",
            )
        if access.required_purpose and caller.purpose != access.required_purpose:
            raise CamaraError.generic(
                403, f"The access token must be issued for purpose {access.required_purpose}."
            )
        return caller

    dependency.__resim_access__ = (ACCESS_RULE,)  # type: ignore[attr-defined]
    fn: Callable[[Request], Any] = dependency
    return Depends(fn)
