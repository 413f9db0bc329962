"""The enumerations of resim's objects (kinds, forms, states, channels, outcomes).

Pure Python. ``resim.domain.model`` re-exports them; they live here so the
request aggregate (``resim.domain.request``) and the model share them without
an import cycle.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    LOST = "lost"
    STOLEN = "stolen"
    DAMAGED = "damaged"
    DEVICE_CHANGE = "device_change"
    PROFILE_DELETED = "profile_deleted"

    @property
    def kills_old_sim_at_once(self) -> bool:
        """Lost or stolen: suspend the old SIM as soon as identity is verified."""
        return self in (Reason.LOST, Reason.STOLEN)


class SimForm(StrEnum):
    PHYSICAL = "physical"
    ESIM = "esim"


class DeliveryMode(StrEnum):
    """How the new SIM reaches the customer (``BrandPolicy.delivery_modes``)."""

    ESIM = "esim"  # downloaded from the SM-DP+
    PICKUP = "pickup"  # a card handed over in a store by an agent
    COURIER = "courier"  # a card sent to the postal address on file

    @property
    def form(self) -> SimForm:
        return SimForm.ESIM if self is DeliveryMode.ESIM else SimForm.PHYSICAL


class SimState(StrEnum):
    IN_STOCK = "in_stock"
    RESERVED = "reserved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


# A SIM in one of these states is bound to its line (invariant 1).
BOUND_SIM_STATES = frozenset({SimState.ACTIVE, SimState.SUSPENDED})


class Channel(StrEnum):
    API = "api"
    PORTAL = "portal"
    AGENT = "agent"


class RiskOutcome(StrEnum):
    """Strength order: allow < step_up < review < deny (the strongest finding wins)."""

    ALLOW = "allow"
    STEP_UP = "step_up"  # verify again with a stronger method before going on
    REVIEW = "review"
    DENY = "deny"


class RequestKind(StrEnum):
    REPLACEMENT = "replacement"
    # SEC-12: a survivor of abuse takes their line off a shared account; the
    # original account holder is not told.
    LINE_SEPARATION = "line_separation"


class LineStatus(StrEnum):
    """Whether the operator's billing considers the line in service."""

    ACTIVE = "active"
    SUSPENDED = "suspended"  # barred by the operator (unpaid bill, on request)
    CEASED = "ceased"  # terminated; kept for history (SIM changes, CAMARA)
