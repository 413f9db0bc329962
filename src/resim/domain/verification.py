"""Verification methods, their strengths, and which combinations verify a customer (SEC-02).

Pure: no I/O. A *combination* is a list of method names that together verify
a caller; a brand's policy lists the combinations it accepts per channel
(``BrandPolicy.verification``), for unlocking a line (``unlock_methods``) and
for a step-up (``step_up_methods``, each a single method).

Rules (NIST SP 800-63B, FCC 2023 SIM-change rules):

* Facts an attacker can look up (name, birth date, address, account number,
  last bill, recent calls) have strength 0: a combination made only of them
  never suffices, and a policy naming such a combination is refused.
* An SMS or a call to the number being replaced never counts: ``sms_otp`` is
  not a method resim offers, and a policy naming it is refused.
* An e-mail code proves possession of the mailbox on file: one factor, to be
  combined with a PIN or password, or replaced by TOTP or an agent's document
  check, as the operator's policy says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resim.errors import InvalidInput


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # possession | knowledge | document | public_fact
    strength: int


METHODS: Mapping[str, Method] = {
    m.name: m
    for m in (
        Method("email_otp", "possession", 1),
        Method("pin", "knowledge", 1),
        Method("password", "knowledge", 1),
        Method("totp", "possession", 2),
        Method("id_document", "document", 2),
        # Knowledge-based facts: an attacker can look them up; strength 0.
        Method("name", "public_fact", 0),
        Method("birth_date", "public_fact", 0),
        Method("address", "public_fact", 0),
        Method("account_number", "public_fact", 0),
        Method("last_bill", "public_fact", 0),
        Method("recent_calls", "public_fact", 0),
    )
}
"""Every method resim knows; only those with strength > 0 prove anything."""

# Never offered, never accepted: the code would go to the SIM being replaced,
# which is exactly what a SIM-swap attacker is about to receive.
FORBIDDEN = frozenset({"sms_otp", "voice_call", "sms_to_same_msisdn"})

# The methods the services can check; the others only ever appear in a policy
# alongside them (and then add nothing).
CHECKABLE = frozenset({"email_otp", "pin", "password", "totp", "id_document"})

CHANNELS = ("api", "portal", "agent")

Combo = Sequence[str]


def strength(combo: Iterable[str]) -> int:
    """Sum of the strengths of the distinct methods in ``combo`` (unknown: 0)."""
    return sum(METHODS[m].strength if m in METHODS else 0 for m in set(combo))


def check_combo(combo: Any, *, field: str) -> list[str]:
    """Validate one combination; return it as a list. Raises InvalidInput naming ``field``."""
    if not isinstance(combo, list | tuple) or not combo:
        raise InvalidInput(f"policy field {field}: a combination is a non-empty list of methods")
    for name in combo:
        if not isinstance(name, str):
            raise InvalidInput(f"policy field {field}: method names are strings")
        if name in FORBIDDEN:
            raise InvalidInput(
                f"policy field {field}: {name} is never accepted (it reaches the number "
                "being replaced)",
                code="FORBIDDEN_METHOD",
            )
        if name not in METHODS:
            raise InvalidInput(f"policy field {field}: unknown method {name!r}")
    if strength(combo) <= 0:
        raise InvalidInput(
            f"policy field {field}: facts anyone can look up never suffice alone "
            f"({'+'.join(combo)})",
            code="KBA_ONLY",
        )
    return list(combo)


def check_combos(combos: Any, *, field: str) -> list[list[str]]:
    if not isinstance(combos, list | tuple) or not combos:
        raise InvalidInput(f"policy field {field}: at least one combination is required")
    return [check_combo(c, field=field) for c in combos]


def validate_policy(
    *,
    verification: Any,
    unlock_methods: Any,
    step_up_methods: Any,
) -> None:
    """Check the verification knobs of a brand policy; InvalidInput names the bad field."""
    if not isinstance(verification, Mapping):
        raise InvalidInput("policy field verification: a mapping of channel to combinations")
    unknown = set(verification) - set(CHANNELS)
    if unknown:
        raise InvalidInput(f"policy field verification: unknown channels {sorted(unknown)}")
    for channel in CHANNELS:
        if channel not in verification:
            raise InvalidInput(f"policy field verification: channel {channel} has no methods")
        check_combos(verification[channel], field=f"verification.{channel}")
    check_combos(unlock_methods, field="unlock_methods")
    if not isinstance(step_up_methods, list | tuple) or not step_up_methods:
        raise InvalidInput("policy field step_up_methods: at least one method is required")
    for name in step_up_methods:
        check_combo([name], field="step_up_methods")
        if METHODS[name].strength < 2:
            raise InvalidInput(
                f"policy field step_up_methods: {name} is not stronger than the usual methods"
            )


def validate_loss_methods(*, report: Any, lift: Any) -> None:
    """Loss reports: blocking takes any real factor; lifting ("I found my phone") needs
    strength 2 in every combination (two factors, TOTP or an agent's document check),
    since whoever holds the lost phone may read the mailbox on it."""
    check_combos(report, field="loss_report_methods")
    for combo in check_combos(lift, field="loss_lift_methods"):
        if strength(combo) < 2:
            raise InvalidInput(
                f"policy field loss_lift_methods: {'+'.join(combo)} is one factor; "
                "lifting a loss report needs strong verification",
                code="WEAK_COMBINATION",
            )


def with_legacy_pin(combos: Sequence[Combo], require_pin: bool) -> list[list[str]]:
    """``require_pin`` (legacy knob): every combination also needs the PIN."""
    if not require_pin:
        return [list(c) for c in combos]
    return [list(c) if "pin" in c else [*c, "pin"] for c in combos]


def satisfied(combos: Sequence[Combo], proven: Iterable[str]) -> bool:
    """Whether the proven methods complete at least one combination with strength > 0."""
    have = set(proven) - FORBIDDEN
    return any(set(c) <= have and strength(c) > 0 for c in combos)


@dataclass(frozen=True)
class SubscriberFacts:
    """What the subscriber has on file (never the secrets themselves)."""

    has_pin: bool
    has_password: bool
    has_totp: bool
    has_email: bool = True


def available(method: str, facts: SubscriberFacts) -> bool:
    if method in FORBIDDEN or method not in CHECKABLE:
        return False
    return {
        "email_otp": facts.has_email,
        "pin": facts.has_pin,
        "password": facts.has_password,
        "totp": facts.has_totp,
        "id_document": True,  # an agent checks the document in person
    }[method]


def offered(combos: Sequence[Combo], facts: SubscriberFacts) -> list[list[str]]:
    """The combinations this subscriber can complete, in policy order."""
    return [list(c) for c in combos if strength(c) > 0 and all(available(m, facts) for m in c)]


def email_code_alone() -> dict[str, list[list[str]]]:
    """The behaviour before SEC-02: the e-mail code alone verifies (agents: or a document).

    Weaker than the defaults (an e-mail code is one factor); for brands that
    have not enrolled PINs or passwords yet, and for tests and the demo. With
    ``require_pin`` every combination also needs the PIN.
    """
    return {
        "api": [["email_otp"]],
        "portal": [["email_otp"]],
        "agent": [["email_otp"], ["id_document"]],
    }
