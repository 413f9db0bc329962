"""Who is calling, and who may call each route (issue 3, point 1).

Every route declares its callers with :func:`allow`::

    @router.post("/requests")
    def create(principal: Annotated[Principal, allow("agent", "client:requests:write")]): ...

Rules a route may name:

* ``"anyone"``       no credentials needed (public pages, health)
* ``"customer"``     a customer session bound to a verified line
* ``"agent"``, ``"reviewer"``, ``"admin"``  a staff session with that role
* ``"client:<scope>"``  a machine client whose credentials carry ``<scope>``

Scopes of machine clients (see ``SCOPES``) are coarse and named by what they
let a client do. A route's handler still checks object-level rules (a customer
session reads only its own line's request) through the services.

FOUNDATION STUB: until the identity service lands, a bearer token from
RESIM_API_TOKENS is a client with every scope, and with no tokens configured
(dev) every caller is such a client.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request

from resim.errors import PermissionDenied, Unauthenticated

SCOPES: dict[str, str] = {
    "requests:write": "open, verify on a customer's behalf, resend codes, cancel",
    "requests:read": "read requests and their status",
    "activation:read": "read activation codes (the operator's own app, which verified the user)",
    "sim-changes:read": "read SIM change records",
    "lines:lock": "turn SIM-change locks on and off on a customer's behalf",
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

    def satisfies(self, rule: str) -> bool:
        if rule == "anyone":
            return True
        if rule == "customer":
            return self.kind == "customer"
        if rule in STAFF_ROLES:
            return self.kind == "staff" and self.role == rule
        if rule.startswith("client:"):
            return self.kind == "client" and rule.removeprefix("client:") in self.scopes
        raise ValueError(f"unknown access rule {rule!r}")


def _check_rules(rules: tuple[str, ...]) -> None:
    for rule in rules:
        if rule in ("anyone", "customer", *STAFF_ROLES):
            continue
        if rule.startswith("client:") and rule.removeprefix("client:") in SCOPES:
            continue
        raise ValueError(f"unknown access rule {rule!r}")


def authenticate(request: Request) -> Principal:
    """Resolve the caller from the Authorization header (FOUNDATION STUB, see module doc)."""
    source_ip = request.client.host if request.client else None
    tokens: list[str] = getattr(request.app.state, "api_tokens", [])
    header = request.headers.get("authorization", "")
    given = header.removeprefix("Bearer ").strip()
    if not tokens or (given and any(hmac.compare_digest(given, t) for t in tokens)):
        return Principal(kind="client", id="bss", scopes=frozenset(SCOPES), source_ip=source_ip)
    return Principal(kind="anonymous", source_ip=source_ip)


def allow(*rules: str) -> Any:
    """A dependency that admits callers matching any rule and returns the Principal.

    The rules are kept on the dependency (``__resim_access__``) so a test can
    list every route with the callers it admits.
    """
    _check_rules(rules)

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if any(principal.satisfies(rule) for rule in rules):
            return principal
        if principal.kind == "anonymous":
            raise Unauthenticated("credentials are required for this operation")
        raise PermissionDenied("these credentials do not allow this operation")

    dependency.__resim_access__ = rules  # type: ignore[attr-defined]
    fn: Callable[[Request], Principal] = dependency
    return Depends(fn)
