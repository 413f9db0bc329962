"""A brand's policy: the knobs an operator sets per brand.

Stored as JSON on the brand; every field has a safe default so a brand with
an empty policy behaves sensibly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from resim.domain.brand_identity import BrandIdentity
from resim.domain.verification import validate_loss_methods, validate_policy
from resim.errors import InvalidInput


@dataclass(frozen=True)
class FeeRule:
    """Fee in minor units of the brand's currency; the first N in a window are free."""

    amount_minor: int = 0
    free_per_window: int = 1
    window_days: int = 365


def _default_verification() -> dict[str, list[list[str]]]:
    # SEC-02 / NIST SP 800-63B: an e-mail code is one factor; it is combined with
    # something the customer knows, or an agent checks an identity document.
    return {
        "api": [["email_otp", "pin"], ["email_otp", "password"], ["totp"]],
        "portal": [["email_otp", "pin"], ["email_otp", "password"], ["totp"]],
        "agent": [["id_document"], ["email_otp", "pin"], ["totp"]],
    }


# How a new SIM reaches the customer: an eSIM download, a card collected in a
# store (an agent hands it over), or a card sent by courier.
DELIVERY_MODES = ("esim", "pickup", "courier")


# How an eSIM an agent requested for the customer reaches them (issue 12): on
# a "screen" the agent turns to the customer (QR and manual values, shown only
# in the console session that opened the request), or by "email": the customer
# gets the ready link at the address on file and installs it themselves.
AGENT_ESIM_HANDOFFS = ("screen", "email")


# Who, besides the staff member who made it, confirms a staff-made replacement
# (resim.domain.agent_channel): the customer with a factor of their own, or a
# second staff member. The agent alone never suffices.
AGENT_CONFIRMATIONS = ("customer_factor", "second_staff")


def _default_missing_signal() -> dict[str, dict[str, str]]:
    # SEC-07: a self-service caller (portal, anonymous API) who sends no device or
    # whose country cannot be told is treated as an unknown device / country; a
    # staff member's or API client's request without them is not held for that.
    return {
        rule: {"self_service": "step_up", "trusted": "ignore"}
        for rule in ("new_device", "new_country")
    }


def _default_unlock_methods() -> list[list[str]]:
    return [["email_otp", "pin"], ["email_otp", "password"], ["totp"], ["id_document"]]


def _default_loss_report_methods() -> list[list[str]]:
    return [["email_otp"], ["pin"], ["password"], ["totp"], ["id_document"]]


def _default_loss_lift_methods() -> list[list[str]]:
    return [["email_otp", "pin"], ["email_otp", "password"], ["id_document"]]


@dataclass(frozen=True)
class BrandPolicy:
    require_pin: bool = False
    otp_ttl_minutes: int = 10
    otp_max_attempts: int = 5
    verification_window_hours: int = 24
    # A verified request the risk check held for a stronger method (step-up)
    # expires when none is proven within this many hours (like an unverified one).
    step_up_window_hours: int = 24
    activation_code_ttl_hours: int = 72
    recent_replacement_days: int = 30
    recent_email_change_days: int = 14
    profile_type: str = "default"
    fee: FeeRule = field(default_factory=FeeRule)
    # SEC-02: per channel, the combinations of methods that verify a customer.
    verification: dict[str, list[list[str]]] = field(default_factory=_default_verification)
    # SEC-07: methods that satisfy a "require a stronger method" outcome.
    step_up_methods: list[str] = field(default_factory=lambda: ["id_document", "totp"])
    # SEC-07: per-rule overrides {"rule id": {"outcome": ..., "days": ..., "enabled": ...}}.
    risk_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    # SEC-07: what new_device / new_country do when their signal is missing, per
    # origin ("self_service": portal and anonymous API; "trusted": staff and API
    # clients): "ignore", or the outcome to give (see resim.domain.risk).
    missing_signal: dict[str, dict[str, str]] = field(default_factory=_default_missing_signal)
    # SEC-07: hours between approval and provisioning, per reason ("lost": 2).
    cooling_off_hours: dict[str, float] = field(default_factory=dict)
    # SEC-05: unlocking the SIM-change lock.
    unlock_delay_hours: float = 24.0
    unlock_methods: list[list[str]] = field(default_factory=_default_unlock_methods)
    # SEC-03: failures per account in the window before the account is frozen;
    # back-off starts after backoff_after_failures and doubles each time.
    account_max_failures: int = 10
    failure_window_hours: float = 24.0
    backoff_after_failures: int = 3
    backoff_base_seconds: float = 30.0
    # SEC-08: requests one agent may create per hour.
    agent_max_requests_per_hour: int = 20
    # SEC-08 / issue 13: a request that staff opened or verified goes on only with
    # one of these (either suffices): "customer_factor" (the customer proved a
    # factor of their own: the e-mail code or TOTP) or "second_staff" (another
    # staff member approves it). Without "second_staff", the agent channel's
    # combinations all include the e-mail code.
    agent_confirmation: list[str] = field(default_factory=lambda: list(AGENT_CONFIRMATIONS))
    # SEC-08: risk rules whose firing makes a request need two approvers.
    four_eyes_rules: list[str] = field(
        default_factory=lambda: ["prior_fraud_flag", "lock_toggled_recently", "agent_history"]
    )
    # SEC-06: post-swap protections passed to the core network at cut-over.
    sms_hold_hours: float = 24.0
    port_out_block_days: float = 7.0
    # SEC-04: also tell the old SIM (by SMS) while it still works.
    notify_old_sim: bool = True
    # CAMARA SIM Swap: how many days of SIM-change history local rules let the
    # operator tell a bank about (None: unlimited). A check's maxAge above it is
    # 400 OUT_OF_RANGE; an older latest change is reported as null with
    # monitoredPeriod (docs/camara.md).
    camara_monitored_days: int | None = None
    # Delivery modes the brand offers (a subset of DELIVERY_MODES, at least one).
    delivery_modes: list[str] = field(default_factory=lambda: list(DELIVERY_MODES))
    # Added to the fee (minor units) when the card goes by courier: postage is
    # charged even when the replacement itself is free under ``fee``.
    courier_fee_minor: int = 0
    # Loss reports (resim.domain.loss): blocking the SIM needs one of these
    # (one factor that does not need the lost SIM); lifting the block ("I found
    # my phone") one of these strong combinations.
    loss_report_methods: list[list[str]] = field(default_factory=_default_loss_report_methods)
    loss_lift_methods: list[list[str]] = field(default_factory=_default_loss_lift_methods)
    # Issue 12: how an agent-requested eSIM reaches the customer (AGENT_ESIM_HANDOFFS).
    agent_esim_handoff: str = "screen"
    # Issue 12: reviewers who must approve unfreezing an account (1, or 2 for the
    # two-person rule: the second must be a different person).
    unfreeze_reviewers: int = 1
    # How the brand speaks to its customers: name, logo, colours, contact points,
    # the note after a swap (resim.domain.brand_identity).
    identity: BrandIdentity = field(default_factory=BrandIdentity)

    def __post_init__(self) -> None:
        for name in (
            "otp_ttl_minutes",
            "otp_max_attempts",
            "verification_window_hours",
            "step_up_window_hours",
            "activation_code_ttl_hours",
        ):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"policy field {name} must be positive")
        if self.recent_replacement_days < 0 or self.recent_email_change_days < 0:
            raise InvalidInput("policy look-back windows cannot be negative")
        if self.fee.amount_minor < 0 or self.courier_fee_minor < 0:
            raise InvalidInput("a fee cannot be negative")
        self._check_delivery_modes()
        self._check_agent_confirmation()
        if self.agent_esim_handoff not in AGENT_ESIM_HANDOFFS:
            raise InvalidInput(
                "policy field agent_esim_handoff must be one of " + ", ".join(AGENT_ESIM_HANDOFFS)
            )
        if isinstance(self.unfreeze_reviewers, bool) or self.unfreeze_reviewers not in (1, 2):
            raise InvalidInput("policy field unfreeze_reviewers must be 1 or 2")
        for name in (
            "unlock_delay_hours",
            "sms_hold_hours",
            "port_out_block_days",
            "backoff_base_seconds",
        ):
            if getattr(self, name) < 0:
                raise InvalidInput(f"policy field {name} cannot be negative")
        for name in ("account_max_failures", "agent_max_requests_per_hour"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"policy field {name} must be positive")
        if self.failure_window_hours <= 0:
            raise InvalidInput("policy field failure_window_hours must be positive")
        if self.backoff_after_failures < 0:
            raise InvalidInput("policy field backoff_after_failures cannot be negative")
        days = self.camara_monitored_days
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500
        ):
            raise InvalidInput("policy field camara_monitored_days must be 1..36500 days or null")
        # SEC-02: known methods only, never SMS to the same number, never KBA alone.
        validate_policy(
            verification=self.verification,
            unlock_methods=self.unlock_methods,
            step_up_methods=self.step_up_methods,
        )
        self._check_risk_settings()
        validate_loss_methods(report=self.loss_report_methods, lift=self.loss_lift_methods)

    def _check_delivery_modes(self) -> None:
        modes = self.delivery_modes
        if not isinstance(modes, list) or not modes:
            raise InvalidInput("policy field delivery_modes must list at least one mode")
        unknown = [m for m in modes if m not in DELIVERY_MODES]
        if unknown:
            raise InvalidInput(
                f"policy field delivery_modes: unknown mode {unknown[0]!r}"
                f" (one of {', '.join(DELIVERY_MODES)})"
            )
        if len(set(modes)) != len(modes):
            raise InvalidInput("policy field delivery_modes lists a mode twice")

    def _check_agent_confirmation(self) -> None:
        ways = self.agent_confirmation
        if not isinstance(ways, list) or not ways:
            raise InvalidInput(
                "policy field agent_confirmation must list at least one of "
                + ", ".join(AGENT_CONFIRMATIONS)
                + ": an agent alone never completes a replacement"
            )
        unknown = [w for w in ways if w not in AGENT_CONFIRMATIONS]
        if unknown:
            raise InvalidInput(
                f"policy field agent_confirmation: unknown value {unknown[0]!r}"
                f" (one of {', '.join(AGENT_CONFIRMATIONS)})"
            )
        if len(set(ways)) != len(ways):
            raise InvalidInput("policy field agent_confirmation lists a value twice")

    def _check_risk_settings(self) -> None:
        # Imported here: resim.domain.risk (the rule catalogue) imports this module.
        from resim.domain.model import Reason
        from resim.domain.risk import (
            validate_missing_signal,
            validate_risk_rules,
            validate_rule_ids,
        )

        validate_risk_rules(self.risk_rules)
        # Stored complete, so the brand's policy shows every choice, defaults included.
        full = validate_missing_signal(self.missing_signal, _default_missing_signal())
        object.__setattr__(self, "missing_signal", full)
        validate_rule_ids("four_eyes_rules", self.four_eyes_rules)
        reasons = {r.value for r in Reason}
        for reason, hours in self.cooling_off_hours.items():
            if reason not in reasons:
                raise InvalidInput(
                    f"policy field cooling_off_hours: unknown reason {reason!r}"
                    f" (one of {', '.join(sorted(reasons))})"
                )
            if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
                raise InvalidInput(f"policy field cooling_off_hours: {reason} must be hours >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BrandPolicy:
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"unknown policy fields: {', '.join(sorted(unknown))}")
        fee = data.pop("fee", None)
        fee_rule = FeeRule(**fee) if isinstance(fee, dict) else FeeRule()
        identity = BrandIdentity.from_value(data.pop("identity", None))
        return cls(fee=fee_rule, identity=identity, **data)
