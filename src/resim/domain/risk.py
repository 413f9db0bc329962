"""Risk rules: explainable, each one a pure function of the facts it needs.

A rule returns a :class:`RiskFinding` when it fires. The assessment keeps every
finding (rule id, outcome, human reason) on the request, so a reviewer sees
why it was held. The strongest outcome wins: deny > review > allow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from resim.domain.model import RiskOutcome
from resim.domain.policy import BrandPolicy


@dataclass(frozen=True)
class RiskFacts:
    """What the rules look at, gathered by the service in one transaction."""

    now: dt.datetime
    line_locked: bool
    last_replacement_at: dt.datetime | None
    email_changed_at: dt.datetime | None
    # SEC-08: an agent opened the request on a locked line (``services/locks.py``)
    lock_override_by: str | None = None


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


_RANK = {RiskOutcome.ALLOW: 0, RiskOutcome.REVIEW: 1, RiskOutcome.DENY: 2}


def rule_sim_change_lock(facts: RiskFacts, policy: BrandPolicy) -> RiskFinding | None:
    if facts.lock_override_by is not None:
        # Never allowed by the engine alone, even if the lock went off since:
        # a reviewer (two, see required_approvals) must look at the override.
        return RiskFinding(
            "sim_change_lock",
            RiskOutcome.REVIEW,
            f"lock override by agent {facts.lock_override_by}: the line has a SIM-change "
            "lock and the agent opened this request anyway after checking an identity "
            "document",
        )
    if facts.line_locked:
        return RiskFinding(
            "sim_change_lock",
            RiskOutcome.DENY,
            "the line has a SIM-change lock; the customer must remove it first",
        )
    return None


def rule_recent_replacement(facts: RiskFacts, policy: BrandPolicy) -> RiskFinding | None:
    days = policy.recent_replacement_days
    if days and facts.last_replacement_at is not None:
        if facts.now - facts.last_replacement_at < dt.timedelta(days=days):
            return RiskFinding(
                "recent_replacement",
                RiskOutcome.REVIEW,
                f"the SIM of this line was already replaced within the last {days} days",
            )
    return None


def rule_recent_email_change(facts: RiskFacts, policy: BrandPolicy) -> RiskFinding | None:
    days = policy.recent_email_change_days
    if days and facts.email_changed_at is not None:
        if facts.now - facts.email_changed_at < dt.timedelta(days=days):
            return RiskFinding(
                "recent_email_change",
                RiskOutcome.REVIEW,
                f"the contact e-mail address was changed within the last {days} days",
            )
    return None


RULES = (rule_sim_change_lock, rule_recent_replacement, rule_recent_email_change)


def assess(facts: RiskFacts, policy: BrandPolicy) -> RiskAssessment:
    findings = tuple(f for rule in RULES if (f := rule(facts, policy)) is not None)
    outcome = RiskOutcome.ALLOW
    for finding in findings:
        if _RANK[finding.outcome] > _RANK[outcome]:
            outcome = finding.outcome
    return RiskAssessment(outcome, findings)
