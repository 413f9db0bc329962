"""The objects of resim as plain Python classes (no framework imports).

``resim.adapters.db.orm`` maps them to tables imperatively. Identifiers are
strings; times are timezone-aware UTC datetimes passed in by the caller (a
``Clock``), never read from the system here.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from resim.domain.kinds import (
    BOUND_SIM_STATES,
    Channel,
    DeliveryMode,
    LineStatus,
    Reason,
    RequestKind,
    RiskOutcome,
    SimForm,
    SimState,
)
from resim.domain.policy import BrandPolicy
from resim.domain.request import ReplacementRequest
from resim.domain.sim_lifecycle import check_sim_transition

__all__ = [
    "BOUND_SIM_STATES",
    "AuditEvent",
    "Brand",
    "Channel",
    "DeliveryMode",
    "Line",
    "LineStatus",
    "Reason",
    "ReplacementRequest",
    "RequestKind",
    "RiskOutcome",
    "Sim",
    "SimChange",
    "SimForm",
    "SimState",
    "Subscriber",
]


class Brand:
    def __init__(
        self,
        *,
        id: str,
        name: str,
        country: str,
        currency: str,
        language: str,
        timezone: str,
        policy: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.country = country
        self.currency = currency
        self.language = language
        self.timezone = timezone
        self.policy_data: dict[str, Any] = dict(policy or {})

    @property
    def policy(self) -> BrandPolicy:
        """The policy ``policy_data`` holds now (shared and cached: read it, never
        change its lists or dicts; a brand's new policy is a new ``policy_data``)."""
        return policy_of(self.id, self.policy_data)


# Parsed policies by brand id, each with the data it was parsed from: parsing and
# validating one took about 0.3 ms, and every use case reads its brand's policy
# several times, each time on a freshly loaded Brand. A read compares the brand's
# data with the kept copy (a few microseconds; keying by repr() took 60), so an
# edit made by any process, or a brand of the same id in another database, is
# parsed afresh.
_POLICIES: dict[str, tuple[dict[str, Any], BrandPolicy]] = {}
_POLICY_CACHE_SIZE = 256


def policy_of(brand_id: str, data: dict[str, Any]) -> BrandPolicy:
    """``BrandPolicy.from_dict(data)``, cached per brand (raises as it does)."""
    cached = _POLICIES.get(brand_id)
    if cached is not None and cached[0] == data:
        return cached[1]
    # Parsed from a copy, and the copy kept: the cache shares nothing with ``data``.
    kept = copy.deepcopy(data)
    policy = BrandPolicy.from_dict(copy.deepcopy(kept))
    if len(_POLICIES) >= _POLICY_CACHE_SIZE:
        _POLICIES.clear()
    _POLICIES[brand_id] = (kept, policy)
    return policy


class Subscriber:
    def __init__(
        self,
        *,
        id: str,
        brand_id: str,
        name: str,
        email: str,
        language: str,
        created_at: dt.datetime,
        email_changed_at: dt.datetime | None = None,
        pin_hash: str | None = None,
        alt_msisdn: str | None = None,
        postal_address: str | None = None,
        password_hash: str | None = None,
    ) -> None:
        self.id = id
        self.brand_id = brand_id
        # name, email, alt_msisdn, postal_address: personal data, encrypted columns
        self.name = name
        self.email = email
        self.language = language
        self.created_at = created_at
        self.email_changed_at = email_changed_at
        self.pin_hash = pin_hash
        self.alt_msisdn = alt_msisdn  # E.164; notices only, never a verification channel
        self.postal_address = postal_address
        self.password_hash = password_hash  # portal password, argon2id
        self.totp_secret: str | None = None  # encrypted column
        self.password_changed_at: dt.datetime | None = None
        self.address_changed_at: dt.datetime | None = None
        # SEC-03/SEC-04: a hard cap or a "this was not me" report freezes replacements.
        self.replacements_frozen_at: dt.datetime | None = None
        self.frozen_reason: str | None = None
        # Issue 12: an unfreeze approved by one reviewer, waiting for a second one.
        self.unfreeze_requested_by: str | None = None
        self.unfreeze_requested_at: dt.datetime | None = None
        self.unfreeze_reason: str | None = None
        self.fraud_flags = 0
        self.known_countries: list[str] = []
        self.known_devices: list[str] = []  # SHA-256 of device identifiers
        self.totp_last_step: int | None = None  # last accepted TOTP step (no replay)
        # Issue 14: compared with the ID document an agent reads (encrypted columns).
        self.birth_date: str | None = None  # ISO 8601 date
        self.id_document_number: str | None = None


class Line:
    """A number of a subscriber.

    Most lines have a SIM bound to them (``Sim.bound_line_id``; at most one:
    invariant 1). A number can exist before any SIM does (``awaiting_sim``):
    reserved for a customer, or ported in and not yet activated. Such a line
    has no SIM, no SIM change and no activation; it cannot be replaced (there
    is nothing to replace) and the CAMARA API reports no SIM change for it.
    """

    def __init__(
        self,
        *,
        id: str,
        msisdn: str,
        subscriber_id: str,
        brand_id: str,
        created_at: dt.datetime,
        sim_change_locked: bool = False,
        status: LineStatus = LineStatus.ACTIVE,
        awaiting_sim: bool = False,
    ) -> None:
        self.id = id
        self.status = status
        self.awaiting_sim = awaiting_sim
        self.msisdn = msisdn
        self.subscriber_id = subscriber_id
        self.brand_id = brand_id
        self.created_at = created_at
        self.sim_change_locked = sim_change_locked
        self.lock_changed_at: dt.datetime | None = None
        # SEC-05: unlocking takes effect only at this time; until then the lock holds.
        self.unlock_effective_at: dt.datetime | None = None
        self.ported_in_at: dt.datetime | None = None
        # SEC-05: the pending unlock's e-mail code (hash) and its expiry.
        self.unlock_otp_hash: str | None = None
        self.unlock_otp_expires_at: dt.datetime | None = None
        # Loss reports: the pending e-mail code for blocking the SIM or lifting the block.
        self.loss_otp_hash: str | None = None
        self.loss_otp_expires_at: dt.datetime | None = None

    def first_sim_bound(self) -> None:
        """The number got its first SIM: from now on it is a line like any other
        (the caller records the SIM change: "New subscription is considered as a
        SIM swap as well", CAMARA sim-swap)."""
        self.awaiting_sim = False

    def is_locked(self, now: dt.datetime) -> bool:
        """Whether the SIM-change lock refuses replacements at ``now``."""
        if not self.sim_change_locked:
            return False
        return self.unlock_effective_at is None or now < self.unlock_effective_at


class Sim:
    def __init__(
        self,
        *,
        iccid: str,
        imsi: str,
        form: SimForm,
        state: SimState,
        brand_id: str,
        line_id: str | None = None,
        profile_type: str | None = None,
        ki: str | None = None,
        opc: str | None = None,
    ) -> None:
        self.iccid = iccid
        self.imsi = imsi
        self.form = form
        self.state = state
        self.brand_id = brand_id
        self.line_id = line_id
        self.profile_type = profile_type
        # Authentication keys (hex): encrypted columns, never logged, never returned.
        self.ki = ki
        self.opc = opc
        # Unique in the database: equals line_id while the SIM is bound (invariant 1).
        self.bound_line_id: str | None = line_id if state in BOUND_SIM_STATES else None

    def set_state(self, state: SimState, *, line_id: str | None = None) -> str:
        """Change the SIM's state (and line, when given) if ``SIM_TRANSITIONS`` allows
        it; keeps ``bound_line_id`` in step. Returns the edge's reason; raises
        InvalidTransition (nothing changed) for a pair the table does not list."""
        why = check_sim_transition(SimState(self.state), state)
        if line_id is not None:
            self.line_id = line_id
        self.state = state
        self.bound_line_id = self.line_id if state in BOUND_SIM_STATES else None
        return why


class SimChange:
    """A SIM change record: the number moved from one SIM to another (CAMARA reads these)."""

    def __init__(
        self,
        *,
        id: str,
        msisdn: str,
        line_id: str,
        changed_at: dt.datetime,
        new_iccid: str,
        old_iccid: str | None,
        request_id: str | None,
    ) -> None:
        self.id = id
        self.msisdn = msisdn
        self.line_id = line_id
        self.changed_at = changed_at
        self.new_iccid = new_iccid
        self.old_iccid = old_iccid
        self.request_id = request_id


class AuditEvent:
    def __init__(
        self,
        *,
        id: str,
        at: dt.datetime,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.object_type = object_type
        self.object_id = object_id
        self.detail: dict[str, Any] = dict(detail or {})
        self.source = source  # where from: an IP address, "worker", "cli"
        # SEC-09 hash chain, filled when the transaction commits.
        self.prev_hash: str | None = None
        self.hash: str | None = None
