"""Risk rules (SEC-07): explainable, configurable per brand, each a pure function of facts.

Every rule has an id, a default outcome, a look-back window where it has one,
and a human reason. A brand changes them through ``BrandPolicy.risk_rules``::

    {"new_device": {"outcome": "review"}, "recent_port_in": {"days": 60},
     "prior_fraud_flag": {"enabled": false}}

A rule that fires gives a :class:`RiskFinding` (rule id, outcome, reason). The
assessment keeps every finding, so a reviewer sees why a request was held; the
strongest outcome wins: allow < step_up < review < deny (:func:`decide`).

Two rules need a signal the caller may not have: ``new_device`` (a device
identifier) and ``new_country`` (where the request came from). When the signal
is missing, ``BrandPolicy.missing_signal`` says what the rule does, per origin
of the request: ``self_service`` (the portal, or an anonymous API caller: whoever
it is chose what to send) or ``trusted`` (a staff member or an API client with
credentials). ``ignore`` lets the rule stay silent; an outcome (default
``step_up`` for self-service) makes it fire as if the device or country were
unknown, with a reason saying the signal was missing::

    {"new_device": {"self_service": "step_up", "trusted": "ignore"},
     "new_country": {"self_service": "step_up", "trusted": "ignore"}}

The SIM-change lock (SEC-05) cannot be weakened here: ``sim_change_lock`` must
stay enabled with outcome deny. An agent's lock override (SEC-08) turns it into
a review by two people instead (see ``resim.services.risk.review``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from resim.domain.model import RiskOutcome
from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput

RANK = {RiskOutcome.ALLOW: 0, RiskOutcome.STEP_UP: 1, RiskOutcome.REVIEW: 2, RiskOutcome.DENY: 3}


@dataclass(frozen=True)
class RiskFacts:
    """What the rules look at, gathered by the service in one transaction.

    Times are aware UTC datetimes (None: never happened). ``agent`` is the
    creating staff member's actor ("staff:<id>") or None; the agent counts are
    over the ``agent_history`` window, not counting this request.
    ``self_service``: the request came from the portal or an anonymous API
    caller, so a missing device or country is read with the policy's
    ``missing_signal`` choice for self-service (``trusted`` otherwise).
    """

    now: dt.datetime
    line_locked: bool
    last_replacement_at: dt.datetime | None = None
    email_changed_at: dt.datetime | None = None
    password_changed_at: dt.datetime | None = None
    address_changed_at: dt.datetime | None = None
    lock_changed_at: dt.datetime | None = None
    ported_in_at: dt.datetime | None = None
    lock_override: bool = False
    device_id: str | None = None
    known_devices: tuple[str, ...] = ()
    country: str | None = None
    known_countries: tuple[str, ...] = ()
    agent: str | None = None
    agent_flagged_requests: int = 0
    agent_opened_requests: int = 0
    fraud_flags: int = 0
    self_service: bool = False


@dataclass(frozen=True)
class RiskFinding:
    rule: str
    outcome: RiskOutcome
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "outcome": self.outcome.value, "reason": self.reason}


@dataclass(frozen=True)
class RiskAssessment:
    outcome: RiskOutcome
    findings: tuple[RiskFinding, ...]


@dataclass(frozen=True)
class RuleConfig:
    """A rule as one brand runs it (defaults merged with ``BrandPolicy.risk_rules``)."""

    enabled: bool
    outcome: RiskOutcome
    days: int | None = None  # look-back window; 0 turns a windowed rule off
    max_requests: int | None = None  # agent_history only: "opened many"


Check = Callable[[RiskFacts, RuleConfig], str | None]


def _within(facts: RiskFacts, at: dt.datetime | None, days: int | None) -> bool:
    return bool(days) and at is not None and facts.now - at < dt.timedelta(days=days or 0)


def _lock(f: RiskFacts, c: RuleConfig) -> str | None:
    if f.line_locked and not f.lock_override:
        return "the line has a SIM-change lock; the customer must remove it first"
    return None


def _recent_replacement(f: RiskFacts, c: RuleConfig) -> str | None:
    if _within(f, f.last_replacement_at, c.days):
        return f"the SIM of this line was already replaced within the last {c.days} days"
    return None


def _recent_email(f: RiskFacts, c: RuleConfig) -> str | None:
    if _within(f, f.email_changed_at, c.days):
        return f"the contact e-mail address was changed within the last {c.days} days"
    return None


def _recent_password(f: RiskFacts, c: RuleConfig) -> str | None:
    if _within(f, f.password_changed_at, c.days):
        return f"the account password was changed within the last {c.days} days"
    return None


def _recent_address(f: RiskFacts, c: RuleConfig) -> str | None:
    if _within(f, f.address_changed_at, c.days):
        return f"the postal address was changed within the last {c.days} days"
    return None


def _lock_toggled(f: RiskFacts, c: RuleConfig) -> str | None:
    if _within(f, f.lock_changed_at, c.days):
        return f"the SIM-change lock was turned on or off within the last {c.days} days"
    return None


def _port_in(f: RiskFacts, c: RuleConfig) -> str | None:
    if _within(f, f.ported_in_at, c.days):
        return f"the number was ported in from another operator within the last {c.days} days"
    return None


def _new_device(f: RiskFacts, c: RuleConfig) -> str | None:
    if f.device_id is not None and f.device_id not in f.known_devices:
        return "the request comes from a device this customer has not used before"
    return None


def _new_country(f: RiskFacts, c: RuleConfig) -> str | None:
    if f.country is not None and f.country not in f.known_countries:
        return f"the request comes from a country this customer has not used before ({f.country})"
    return None


def _agent_history(f: RiskFacts, c: RuleConfig) -> str | None:
    if f.agent is None or not c.days:
        return None
    if f.agent_flagged_requests:
        return (
            f"the agent who opened it ({f.agent}) had {f.agent_flagged_requests} request(s) "
            f"rejected or reported 'not me' within the last {c.days} days"
        )
    if c.max_requests is not None and f.agent_opened_requests >= c.max_requests:
        return (
            f"the agent who opened it ({f.agent}) opened {f.agent_opened_requests} requests "
            f"within the last {c.days} days (limit {c.max_requests})"
        )
    return None


def _fraud_flag(f: RiskFacts, c: RuleConfig) -> str | None:
    if f.fraud_flags > 0:
        return f"the account has {f.fraud_flags} earlier fraud flag(s)"
    return None


@dataclass(frozen=True)
class RuleSpec:
    id: str
    outcome: RiskOutcome
    check: Check
    days: int | str | None = None  # int, or the BrandPolicy field holding the default
    max_requests: int | None = None
    signal: str | None = None  # the RiskFacts field the rule cannot work without


A, S, R, D = RiskOutcome.ALLOW, RiskOutcome.STEP_UP, RiskOutcome.REVIEW, RiskOutcome.DENY
RULES: tuple[RuleSpec, ...] = (
    RuleSpec("sim_change_lock", D, _lock),
    RuleSpec("recent_replacement", R, _recent_replacement, "recent_replacement_days"),
    RuleSpec("recent_email_change", R, _recent_email, "recent_email_change_days"),
    RuleSpec("recent_password_change", R, _recent_password, 14),
    RuleSpec("recent_address_change", R, _recent_address, 14),
    RuleSpec("lock_toggled_recently", R, _lock_toggled, 14),
    RuleSpec("recent_port_in", R, _port_in, 30),
    RuleSpec("new_device", S, _new_device, signal="device_id"),
    RuleSpec("new_country", S, _new_country, signal="country"),
    RuleSpec("agent_history", R, _agent_history, 30, max_requests=200),
    RuleSpec("prior_fraud_flag", R, _fraud_flag),
)
RULE_IDS = frozenset(r.id for r in RULES)
SIGNAL_RULES = tuple(r.id for r in RULES if r.signal is not None)
ORIGINS = ("self_service", "trusted")
MISSING_CHOICES = ("ignore", *(o.value for o in RiskOutcome))

_MISSING_REASON = {
    "device_id": "the request came without a device resim can recognise",
    "country": "the country the request came from could not be determined",
}


def validate_risk_rules(data: Any) -> None:
    """Check ``BrandPolicy.risk_rules``; raise InvalidInput naming the bad part."""
    if not isinstance(data, Mapping):
        raise InvalidInput("policy field risk_rules must be an object of rule id -> settings")
    specs = {r.id: r for r in RULES}
    for rule_id, cfg in data.items():
        spec = specs.get(rule_id)
        if spec is None:
            raise InvalidInput(
                f"unknown risk rule {rule_id!r}; known: {', '.join(sorted(RULE_IDS))}"
            )
        if not isinstance(cfg, Mapping):
            raise InvalidInput(f"risk rule {rule_id}: settings must be an object")
        allowed = {"enabled", "outcome"}
        allowed |= {"days"} if spec.days is not None else set()
        allowed |= {"max_requests"} if spec.max_requests is not None else set()
        unknown = set(cfg) - allowed
        if unknown:
            raise InvalidInput(
                f"risk rule {rule_id}: unknown settings {', '.join(sorted(unknown))}"
                f" (allowed: {', '.join(sorted(allowed))})"
            )
        if "enabled" in cfg and not isinstance(cfg["enabled"], bool):
            raise InvalidInput(f"risk rule {rule_id}: enabled must be true or false")
        if "outcome" in cfg and cfg["outcome"] not in {o.value for o in RiskOutcome}:
            raise InvalidInput(
                f"risk rule {rule_id}: outcome must be allow, step_up, review or deny"
            )
        for key in ("days", "max_requests"):
            value = cfg.get(key)
            if key in cfg and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InvalidInput(f"risk rule {rule_id}: {key} must be a whole number >= 0")
        if rule_id == "sim_change_lock" and (
            cfg.get("enabled", True) is False or cfg.get("outcome", "deny") != "deny"
        ):
            raise InvalidInput("risk rule sim_change_lock cannot be weakened: a lock always denies")


def validate_missing_signal(
    data: Any, defaults: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Check ``BrandPolicy.missing_signal`` and return it complete (defaults filled in).

    Shape: ``{rule id: {origin: choice}}`` for the rules in ``SIGNAL_RULES``,
    origins ``self_service`` and ``trusted``, choices ``ignore`` or an outcome.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("policy field missing_signal must be an object of rule id -> settings")
    full: dict[str, dict[str, str]] = {}
    unknown = sorted(set(data) - set(SIGNAL_RULES))
    if unknown:
        raise InvalidInput(
            f"policy field missing_signal: rule {unknown[0]!r} has no signal that can be"
            f" missing (only {', '.join(SIGNAL_RULES)})"
        )
    for rule_id in SIGNAL_RULES:
        given = data.get(rule_id, {})
        if not isinstance(given, Mapping):
            raise InvalidInput(f"policy field missing_signal: {rule_id} must be an object")
        bad = sorted(set(given) - set(ORIGINS))
        if bad:
            raise InvalidInput(
                f"policy field missing_signal: {rule_id}: unknown origin {bad[0]!r}"
                f" (one of {', '.join(ORIGINS)})"
            )
        merged = {**defaults.get(rule_id, {}), **given}
        for origin in ORIGINS:
            choice = merged.get(origin, "ignore")
            if choice not in MISSING_CHOICES:
                raise InvalidInput(
                    f"policy field missing_signal: {rule_id}.{origin} must be one of"
                    f" {', '.join(MISSING_CHOICES)}"
                )
            merged[origin] = choice
        full[rule_id] = {o: merged[o] for o in ORIGINS}
    return full


def validate_rule_ids(field: str, ids: Iterable[str]) -> None:
    unknown = sorted(set(ids) - RULE_IDS)
    if unknown:
        raise InvalidInput(f"policy field {field}: unknown risk rules {', '.join(unknown)}")


def rule_config(policy: BrandPolicy, rule_id: str) -> RuleConfig:
    """The effective settings of one rule for this brand."""
    spec = next(r for r in RULES if r.id == rule_id)
    override = policy.risk_rules.get(rule_id, {})
    days = getattr(policy, spec.days) if isinstance(spec.days, str) else spec.days
    return RuleConfig(
        enabled=bool(override.get("enabled", True)),
        outcome=RiskOutcome(override.get("outcome", spec.outcome.value)),
        days=override.get("days", days),
        max_requests=override.get("max_requests", spec.max_requests),
    )


def assess(facts: RiskFacts, policy: BrandPolicy) -> RiskAssessment:
    """Run every enabled rule; the outcome is the strongest finding's (allow if none)."""
    findings: list[RiskFinding] = []
    for spec in RULES:
        cfg = rule_config(policy, spec.id)
        if not cfg.enabled:
            continue
        if spec.id == "sim_change_lock" and facts.lock_override:
            # Shown even if the lock went off since: the reviewers must know.
            findings.append(
                RiskFinding(
                    spec.id,
                    RiskOutcome.REVIEW,
                    f"lock override by agent {facts.agent or 'unknown'}: the line was locked "
                    "when the request was opened; two people must approve",
                )
            )
            continue
        if spec.signal is not None and getattr(facts, spec.signal) is None:
            missing = _when_missing(spec, facts, policy)
            if missing is not None:
                findings.append(missing)
            continue
        reason = spec.check(facts, cfg)
        if reason is not None:
            findings.append(RiskFinding(spec.id, cfg.outcome, reason))
    return RiskAssessment(strongest(f.outcome for f in findings), tuple(findings))


def _when_missing(spec: RuleSpec, facts: RiskFacts, policy: BrandPolicy) -> RiskFinding | None:
    """The finding of a rule whose signal is missing, as the policy chose (None: ignore)."""
    assert spec.signal is not None
    origin = "self_service" if facts.self_service else "trusted"
    choice = policy.missing_signal.get(spec.id, {}).get(origin, "ignore")
    if choice == "ignore":
        return None
    who = "a self-service request" if facts.self_service else "a request from a trusted caller"
    return RiskFinding(
        spec.id,
        RiskOutcome(choice),
        f"{_MISSING_REASON[spec.signal]}; the brand's policy treats that, for {who},"
        f" as unknown ({choice})",
    )


def strongest(outcomes: Iterable[RiskOutcome]) -> RiskOutcome:
    best = RiskOutcome.ALLOW
    for outcome in outcomes:
        if RANK[outcome] > RANK[best]:
            best = outcome
    return best


def decide(findings: Iterable[RiskFinding], *, stepped_up: bool, four_eyes: bool) -> RiskOutcome:
    """What to do with a verified request given its findings.

    ``stepped_up``: the customer proved a step-up method, so step_up findings
    no longer hold it (they stay recorded). ``four_eyes``: two people must
    approve, so anything short of deny goes to review.
    """
    outcome = strongest(
        f.outcome for f in findings if not (stepped_up and f.outcome == RiskOutcome.STEP_UP)
    )
    if four_eyes and RANK[outcome] < RANK[RiskOutcome.REVIEW]:
        return RiskOutcome.REVIEW
    return outcome
