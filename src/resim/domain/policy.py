"""A brand's policy: the knobs an operator sets per brand.

Stored as JSON on the brand; every field has a safe default so a brand with
an empty policy behaves sensibly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from resim.errors import InvalidInput


@dataclass(frozen=True)
class FeeRule:
    """Fee in minor units of the brand's currency; the first N in a window are free."""

    amount_minor: int = 0
    free_per_window: int = 1
    window_days: int = 365


@dataclass(frozen=True)
class BrandPolicy:
    require_pin: bool = False
    otp_ttl_minutes: int = 10
    otp_max_attempts: int = 5
    verification_window_hours: int = 24
    activation_code_ttl_hours: int = 72
    recent_replacement_days: int = 30
    recent_email_change_days: int = 14
    profile_type: str = "default"
    fee: FeeRule = field(default_factory=FeeRule)

    def __post_init__(self) -> None:
        for name in (
            "otp_ttl_minutes",
            "otp_max_attempts",
            "verification_window_hours",
            "activation_code_ttl_hours",
        ):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"policy field {name} must be positive")
        if self.recent_replacement_days < 0 or self.recent_email_change_days < 0:
            raise InvalidInput("policy look-back windows cannot be negative")
        if self.fee.amount_minor < 0:
            raise InvalidInput("a fee cannot be negative")

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
        return cls(fee=fee_rule, **data)
