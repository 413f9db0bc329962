"""Who is calling, and who may call each route (issue 3, point 1).

Every route declares its callers with :func:`allow`::

    @router.post("/requests")
    def create(principal: Annotated[Principal, allow("agent", "client:requests:write")]): ...

Rules a route may name:

* ``"anyone"``       no credentials needed (public pages, health)
* ``"customer"``     a customer session bound to a verified line
* ``"agent"``, ``"reviewer"``, ``"admin"``  a staff session with that role
* ``"client:<scope>"``  a machine client whose credentials carry ``<scope>``
* ``"smdp"``         the SM-DP+ calling back over ES2+; the callback route checks
  its own token and requester id (ES2+ answers in its own format), so it uses
  :func:`declared` instead of :func:`allow`
* ``"metrics"``      the Prometheus scraper: ``GET /metrics`` checks
  ``RESIM_METRICS_TOKEN`` (or, without one, a loopback caller) itself
  (``resim.entrypoints.api.metrics``), so it uses :func:`declared`
* ``"camara"``       a relying party with a CAMARA access token (a JWT from the
  operator's authorization server); the CAMARA routes verify it themselves
  (``resim.entrypoints.camara.auth.camara_caller``, CAMARA's error format), and
  none of the credentials below satisfies it

Scopes of machine clients (see ``SCOPES``) are coarse and named by what they
let a client do. Which objects a caller reaches is the services' business: every
route hands them :attr:`Principal.scope` (:mod:`resim.services.access.tenancy`), so
staff and clients of one brand reach that brand's lines and requests only, and a
customer session its own line and request; anything else is 404, as if it did
not exist (DESIGN.md, "Tenancy").

Credentials (``Authorization: Bearer ...``), resolved by
:func:`resim.services.access.sessions.resolve_bearer` with the app's ServiceContext:

* ``rsk_<client id>_<secret>``: a machine client's API key (``resim clients add``);
* any other token: a session, staff (``POST /v1/auth/staff/login``) or customer
  (returned by a successful ``POST /v1/requests/{id}/verification``).

No header: anonymous. A header that does not resolve is 401 on every route,
even an "anyone" one, so a caller with an expired session learns it at once.
There is no open mode: RESIM_API_TOKENS is gone (machine clients have keys).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from resim.entrypoints.api.forwarded import source_address
from resim.errors import PermissionDenied, Unauthenticated
from resim.services.access.credentials import CredentialReader
from resim.services.access.sessions import resolve_bearer
from resim.services.access.tenancy import UNRESTRICTED, Scope
from resim.services.context import ServiceContext

SCOPES: dict[str, str] = {
    "requests:write": "open, verify on a customer's behalf, resend codes, cancel",
    "requests:read": "read requests and their status",
    "activation:read": "read activation codes (the operator's own app, which verified the user)",
    "sim-changes:read": "read SIM change records",
    "lines:lock": "turn SIM-change locks on and off on a customer's behalf",
    "lines:loss": "block a lost or stolen phone's SIM; lift it with the customer's strong proof",
    "lines:refresh": "ask the core network to drop a line's SIM so the phone registers afresh",
    "audit:read": "read and export the audit log",
}

STAFF_ROLES = ("agent", "reviewer", "admin")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one HTTP request."""

    kind: str  # "anonymous" | "customer" | "staff" | "client"
    id: str | None = None  # staff id, client id, or customer session id
    role: str | None = None  # staff role
    scopes: frozenset[str] = field(default_factory=frozenset)
    line_id: str | None = None  # customer sessions: the verified line
    request_id: str | None = None  # customer sessions: the request they verified
    brand_id: str | None = None  # staff or client limited to one brand
    source_ip: str | None = None
    session_id: str | None = None  # staff and customer sessions (logout revokes it)

    @property
    def staff_id(self) -> str | None:
        return self.id if self.kind == "staff" else None

    @property
    def scope(self) -> Scope:
        """What this caller may reach: its brand (staff, clients; None: operator-wide),
        its own line and request (customers). Anonymous callers prove themselves with
        the request's own secrets, so no tenant limits them."""
        if self.kind in ("staff", "client"):
            return Scope.of_brand(self.brand_id)
        if self.kind == "customer":
            return Scope.of_customer(line_id=self.line_id, request_id=self.request_id)
        return UNRESTRICTED

    @property
    def actor(self) -> str:
        """How the audit log and the services name this caller."""
        if self.kind == "staff":
            return f"staff:{self.id}"
        if self.kind == "client":
            return f"client:{self.id}"
        if self.kind == "customer":
            return "customer"
        return "anonymous"

    @property
    def reader(self) -> str:
        """Who read a secret, for the audit log: ``actor``, a customer by session id."""
        return f"customer:session:{self.id}" if self.kind == "customer" else self.actor

    def satisfies(self, rule: str) -> bool:
        if rule == "anyone":
            return True
        if rule == "customer":
            return self.kind == "customer"
        if rule in STAFF_ROLES:
            return self.kind == "staff" and self.role == rule
        if rule.startswith("client:"):
            return self.kind == "client" and rule.removeprefix("client:") in self.scopes
        if rule in ("smdp", "camara", "metrics"):
            return False  # those routes authenticate their callers themselves
        raise ValueError(f"unknown access rule {rule!r}")


def _check_rules(rules: tuple[str, ...]) -> None:
    for rule in rules:
        if rule in ("anyone", "customer", "smdp", "camara", "metrics", *STAFF_ROLES):
            continue
        if rule.startswith("client:") and rule.removeprefix("client:") in SCOPES:
            continue
        raise ValueError(f"unknown access rule {rule!r}")


def authenticate(request: Request) -> Principal:
    """Resolve the caller from the Authorization header (see the module docstring)."""
    source_ip = source_address(request)
    header = request.headers.get("authorization")
    if header is None:
        return Principal(kind="anonymous", source_ip=source_ip)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use Authorization: Bearer <API key or session token>")
    ctx: ServiceContext = request.app.state.ctx
    reader: CredentialReader | None = getattr(request.app.state, "credentials", None)
    caller = resolve_bearer(ctx, token.strip(), reader=reader)
    return Principal(
        kind=caller.kind,
        id=caller.id,
        role=caller.role,
        scopes=caller.scopes,
        line_id=caller.line_id,
        request_id=caller.request_id,
        brand_id=caller.brand_id,
        source_ip=source_ip,
        session_id=caller.session_id,
    )


def declared(*rules: str) -> Any:
    """A no-op dependency that records ``rules`` for a route that authenticates its
    callers itself (the ES2+ callback: ``declared("smdp")``)."""
    _check_rules(rules)

    async def dependency() -> None:  # async: FastAPI runs a sync one in its thread pool
        return None

    dependency.__resim_access__ = rules  # type: ignore[attr-defined]
    return Depends(dependency)


def access_rules(route: Any) -> tuple[str, ...] | None:
    """The rules a route declared (through :func:`allow` or :func:`declared`), or None."""
    found: list[str] = []
    seen = False
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop()
        rules = getattr(dep.call, "__resim_access__", None)
        if rules is not None:
            seen = True
            found.extend(rules)
        stack.extend(dep.dependencies)
    return tuple(dict.fromkeys(found)) if seen else None


def allow(*rules: str) -> Any:
    """A dependency that admits callers matching any rule and returns the Principal.

    The rules are kept on the dependency (``__resim_access__``) so a test can
    list every route with the callers it admits.
    """
    _check_rules(rules)

    async def dependency(request: Request) -> Principal:
        # Resolving a credential reads the database, so it runs in the thread pool;
        # an anonymous caller costs no thread hop (most of the BSS's and customers'
        # calls in a bulk reissue are one or the other).
        if "authorization" in request.headers:
            principal = await run_in_threadpool(authenticate, request)
        else:
            principal = authenticate(request)
        if any(principal.satisfies(rule) for rule in rules):
            return principal
        if principal.kind == "anonymous":
            raise Unauthenticated("credentials are required for this operation")
        raise PermissionDenied("these credentials do not allow this operation")

    dependency.__resim_access__ = rules  # type: ignore[attr-defined]
    fn: Callable[[Request], Awaitable[Principal]] = dependency
    return Depends(fn)
