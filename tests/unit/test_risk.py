from __future__ import annotations

import datetime as dt

from resim.domain.model import RiskOutcome
from resim.domain.policy import BrandPolicy
from resim.domain.risk import RiskFacts, assess

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
POLICY = BrandPolicy(recent_replacement_days=30, recent_email_change_days=14)


def facts(**kw: object) -> RiskFacts:
    base: dict[str, object] = {
        "now": NOW,
        "line_locked": False,
        "last_replacement_at": None,
        "email_changed_at": None,
    }
    base.update(kw)
    return RiskFacts(**base)  # type: ignore[arg-type]


def test_clean_request_is_allowed_with_no_findings() -> None:
    result = assess(facts(), POLICY)
    assert result.outcome == RiskOutcome.ALLOW
    assert result.findings == ()


def test_lock_denies() -> None:
    result = assess(facts(line_locked=True), POLICY)
    assert result.outcome == RiskOutcome.DENY
    assert [f.rule for f in result.findings] == ["sim_change_lock"]


def test_recent_replacement_holds_for_review_inside_window_only() -> None:
    inside = assess(facts(last_replacement_at=NOW - dt.timedelta(days=29)), POLICY)
    outside = assess(facts(last_replacement_at=NOW - dt.timedelta(days=31)), POLICY)
    assert inside.outcome == RiskOutcome.REVIEW
    assert "30 days" in inside.findings[0].reason
    assert outside.outcome == RiskOutcome.ALLOW


def test_recent_email_change_holds_for_review() -> None:
    result = assess(facts(email_changed_at=NOW - dt.timedelta(days=2)), POLICY)
    assert result.outcome == RiskOutcome.REVIEW
    assert result.findings[0].rule == "recent_email_change"


def test_strongest_outcome_wins_and_all_reasons_are_kept() -> None:
    result = assess(facts(line_locked=True, email_changed_at=NOW), POLICY)
    assert result.outcome == RiskOutcome.DENY
    assert {f.rule for f in result.findings} == {"sim_change_lock", "recent_email_change"}


def test_zero_day_window_disables_a_rule() -> None:
    policy = BrandPolicy(recent_replacement_days=0)
    assert assess(facts(last_replacement_at=NOW), policy).outcome == RiskOutcome.ALLOW
