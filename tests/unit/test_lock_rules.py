"""The SIM-change lock in the pure domain: when it holds, and what an override turns it into."""

from __future__ import annotations

import datetime as dt

from resim.domain.model import Line, RiskOutcome
from resim.domain.policy import BrandPolicy
from resim.domain.risk import RiskFacts, assess, decide

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def line(*, locked: bool, unlock_at: dt.datetime | None = None) -> Line:
    made = Line(
        id="l1",
        msisdn="+4520100001",
        subscriber_id="s1",
        brand_id="dk",
        created_at=NOW,
        sim_change_locked=locked,
    )
    made.unlock_effective_at = unlock_at
    return made


def test_a_lock_holds_until_a_pending_unlock_takes_effect() -> None:
    assert line(locked=False).is_locked(NOW) is False
    assert line(locked=True).is_locked(NOW) is True
    pending = line(locked=True, unlock_at=NOW + dt.timedelta(hours=24))
    assert pending.is_locked(NOW + dt.timedelta(hours=24) - dt.timedelta(microseconds=1))
    assert not pending.is_locked(NOW + dt.timedelta(hours=24))


def test_an_agent_override_turns_the_lock_denial_into_a_review_with_the_agent_named() -> None:
    facts = RiskFacts(
        now=NOW,
        line_locked=True,
        lock_override=True,
        agent="staff:a7",
    )
    result = assess(facts, BrandPolicy())
    assert result.outcome == RiskOutcome.REVIEW
    [finding] = result.findings
    assert finding.rule == "sim_change_lock"
    assert finding.reason.startswith("lock override by agent staff:a7")


def test_an_override_is_reviewed_even_when_the_lock_went_off_since() -> None:
    facts = RiskFacts(
        now=NOW,
        line_locked=False,
        lock_override=True,
        agent="staff:a7",
    )
    result = assess(facts, BrandPolicy())
    # four eyes: the override itself (request.lock_override) sends it to review
    assert decide(result.findings, stepped_up=False, four_eyes=True) == RiskOutcome.REVIEW
