"""Tenancy: which lines and requests a caller may reach (DESIGN.md, "Tenancy").

Brands are tenants. A staff member or an API client belongs to one brand or is
operator-wide; a customer session reaches only the line and the request it
verified. A :class:`Scope` says that, and every use case that acts for a caller
takes one (``scope=``) and applies it where it loads objects, in one place per
kind of object:

* one request: :func:`resim.services.repo.get_request` (``scope=``); one line:
  :func:`resim.services.repo.get_line_by_msisdn` (``scope=``). An object out
  of scope raises the same NotFound as a missing one, so a caller cannot tell
  another brand's request from one that does not exist;
* lists and counts: the repositories take ``scope=`` too and filter in the
  query (never after a LIMIT), so a list counts only what the caller may see;
  their SQL conditions are in :mod:`resim.adapters.db.scoping`. A
  request's audit trail is read only after the request itself was loaded in
  scope.

The entrypoints build the scope from the authenticated caller
(``Principal.scope`` in :mod:`resim.entrypoints.api.access`). :data:`UNRESTRICTED`
is for callers that no tenant limits: the worker's jobs, the CLI (an operator's
tool), and anonymous customers, who prove who they are with a secret of the
request itself (a one-time code, a PIN) rather than with credentials.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """The objects one caller may reach.

    ``brand_id``: limited to that brand (staff or client of one brand).
    ``customer``: a customer session; it reaches its ``line_id`` and its
    ``request_id`` only (a session missing either reaches nothing of that kind).
    Neither: unrestricted.
    """

    brand_id: str | None = None
    customer: bool = False
    line_id: str | None = None
    request_id: str | None = None

    @classmethod
    def of_brand(cls, brand_id: str | None) -> Scope:
        """A staff member's or client's scope (``None``: operator-wide)."""
        return cls(brand_id=brand_id)

    @classmethod
    def of_customer(cls, *, line_id: str | None, request_id: str | None) -> Scope:
        return cls(customer=True, line_id=line_id, request_id=request_id)

    @property
    def unrestricted(self) -> bool:
        return self.brand_id is None and not self.customer


UNRESTRICTED = Scope()
