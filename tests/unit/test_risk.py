"""The risk rules (SEC-07) as pure functions: each fires alone, each is configurable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from resim.domain.model import RiskOutcome
from resim.domain.policy import BrandPolicy
from resim.domain.risk import RULE_IDS, RiskFacts, RiskFinding, assess, decide
from resim.errors import InvalidInput

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
POLICY = BrandPolicy(recent_replacement_days=30, recent_email_change_days=14)
DAY = dt.timedelta(days=1)


def facts(**kw: Any) -> RiskFacts:
    base: dict[str, Any] = {"now": NOW, "line_locked": False}
    base.update(kw)
    return RiskFacts(**base)


# rule id -> (facts that fire it and nothing else, default outcome, words in the reason)
FIRES_ALONE: dict[str, tuple[dict[str, Any], RiskOutcome, str]] = {
    "sim_change_lock": ({"line_locked": True}, RiskOutcome.DENY, "SIM-change lock"),
    "recent_replacement": ({"last_replacement_at": NOW - 29 * DAY}, RiskOutcome.REVIEW, "30 days"),
    "recent_email_change": ({"email_changed_at": NOW - 2 * DAY}, RiskOutcome.REVIEW, "e-mail"),
    "recent_password_change": (
        {"password_changed_at": NOW - 2 * DAY},
        RiskOutcome.REVIEW,
        "password",
    ),
    "recent_address_change": (
        {"address_changed_at": NOW - 2 * DAY},
        RiskOutcome.REVIEW,
        "postal address",
    ),
    "lock_toggled_recently": ({"lock_changed_at": NOW - 2 * DAY}, RiskOutcome.REVIEW, "lock"),
    "recent_port_in": ({"ported_in_at": NOW - 2 * DAY}, RiskOutcome.REVIEW, "ported in"),
    "new_device": (
        {"device_id": "b" * 64, "known_devices": ("a" * 64,)},
        RiskOutcome.STEP_UP,
        "device",
    ),
    "new_country": (
        {"country": "SE", "known_countries": ("DK",)},
        RiskOutcome.STEP_UP,
        "country",
    ),
    "agent_history": (
        {"agent": "staff:a7", "agent_flagged_requests": 1},
        RiskOutcome.REVIEW,
        "staff:a7",
    ),
    "prior_fraud_flag": ({"fraud_flags": 2}, RiskOutcome.REVIEW, "fraud flag"),
}


def test_every_rule_has_a_fires_alone_case() -> None:
    assert set(FIRES_ALONE) == RULE_IDS


def test_a_clean_request_is_allowed_with_no_findings() -> None:
    result = assess(facts(), POLICY)
    assert result.outcome == RiskOutcome.ALLOW
    assert result.findings == ()


@pytest.mark.parametrize("rule", sorted(FIRES_ALONE))
def test_each_rule_fires_alone_with_its_default_outcome_and_a_reason(rule: str) -> None:
    given, outcome, words = FIRES_ALONE[rule]
    result = assess(facts(**given), POLICY)
    assert [f.rule for f in result.findings] == [rule]
    assert result.outcome == outcome
    assert words in result.findings[0].reason


@pytest.mark.parametrize("rule", sorted(RULE_IDS - {"sim_change_lock"}))
def test_each_rule_can_be_disabled(rule: str) -> None:
    given, _, _ = FIRES_ALONE[rule]
    policy = BrandPolicy(risk_rules={rule: {"enabled": False}})
    assert assess(facts(**given), policy).findings == ()


@pytest.mark.parametrize("rule", sorted(RULE_IDS - {"sim_change_lock"}))
@pytest.mark.parametrize("outcome", ["allow", "step_up", "review", "deny"])
def test_each_rule_outcome_can_be_changed(rule: str, outcome: str) -> None:
    given, _, _ = FIRES_ALONE[rule]
    policy = BrandPolicy(risk_rules={rule: {"outcome": outcome}})
    result = assess(facts(**given), policy)
    assert result.findings[0].outcome == RiskOutcome(outcome)
    assert result.outcome == RiskOutcome(outcome)


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ("recent_replacement", "last_replacement_at"),
        ("recent_email_change", "email_changed_at"),
        ("recent_password_change", "password_changed_at"),
        ("recent_address_change", "address_changed_at"),
        ("lock_toggled_recently", "lock_changed_at"),
        ("recent_port_in", "ported_in_at"),
    ],
)
def test_windowed_rules_follow_the_configured_days(rule: str, field: str) -> None:
    ten_days_ago = {field: NOW - 10 * DAY}
    short = BrandPolicy(risk_rules={rule: {"days": 7}})
    long = BrandPolicy(risk_rules={rule: {"days": 11}})
    off = BrandPolicy(risk_rules={rule: {"days": 0}})
    assert assess(facts(**ten_days_ago), short).findings == ()
    fired = assess(facts(**ten_days_ago), long).findings
    assert [f.rule for f in fired] == [rule]
    assert "11 days" in fired[0].reason
    assert assess(facts(**ten_days_ago), off).findings == ()


def test_the_legacy_policy_windows_are_the_defaults_of_their_rules() -> None:
    policy = BrandPolicy(recent_replacement_days=0, recent_email_change_days=3)
    assert assess(facts(last_replacement_at=NOW), policy).findings == ()
    assert assess(facts(email_changed_at=NOW - 4 * DAY), policy).findings == ()
    assert assess(facts(email_changed_at=NOW - 2 * DAY), policy).outcome == RiskOutcome.REVIEW


def test_agent_history_fires_on_many_requests_and_ignores_non_staff() -> None:
    policy = BrandPolicy(risk_rules={"agent_history": {"max_requests": 5}})
    busy = assess(facts(agent="staff:a1", agent_opened_requests=5), policy)
    assert [f.rule for f in busy.findings] == ["agent_history"]
    assert "opened 5 requests" in busy.findings[0].reason
    assert assess(facts(agent="staff:a1", agent_opened_requests=4), policy).findings == ()
    assert assess(facts(agent=None, agent_flagged_requests=3), policy).findings == ()


def test_known_device_and_country_and_missing_ones_do_not_fire() -> None:
    known = facts(
        device_id="a" * 64, known_devices=("a" * 64,), country="DK", known_countries=("DK",)
    )
    assert assess(known, POLICY).findings == ()
    assert assess(facts(device_id=None, country=None), POLICY).findings == ()


def test_strongest_outcome_wins_and_all_reasons_are_kept() -> None:
    result = assess(facts(line_locked=True, email_changed_at=NOW, country="SE"), POLICY)
    assert result.outcome == RiskOutcome.DENY
    assert {f.rule for f in result.findings} == {
        "sim_change_lock",
        "recent_email_change",
        "new_country",
    }


def test_a_lock_override_turns_the_lock_into_a_review() -> None:
    result = assess(facts(line_locked=True, lock_override=True, agent="staff:a1"), POLICY)
    assert result.outcome == RiskOutcome.REVIEW
    assert "lock override by agent staff:a1" in result.findings[0].reason


def test_step_up_findings_stop_holding_once_stepped_up_but_others_still_do() -> None:
    step = RiskFinding("new_device", RiskOutcome.STEP_UP, "new device")
    review = RiskFinding("recent_port_in", RiskOutcome.REVIEW, "port-in")
    assert decide([step], stepped_up=False, four_eyes=False) == RiskOutcome.STEP_UP
    assert decide([step], stepped_up=True, four_eyes=False) == RiskOutcome.ALLOW
    assert decide([step, review], stepped_up=True, four_eyes=False) == RiskOutcome.REVIEW


def test_four_eyes_always_means_review_but_never_softens_a_deny() -> None:
    allow = RiskFinding("prior_fraud_flag", RiskOutcome.ALLOW, "flag")
    deny = RiskFinding("sim_change_lock", RiskOutcome.DENY, "lock")
    assert decide([allow], stepped_up=False, four_eyes=True) == RiskOutcome.REVIEW
    assert decide([deny], stepped_up=False, four_eyes=True) == RiskOutcome.DENY


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"risk_rules": {"no_such_rule": {}}}, "unknown risk rule"),
        ({"risk_rules": {"new_device": {"outcome": "maybe"}}}, "outcome must be"),
        ({"risk_rules": {"new_device": {"enabled": "no"}}}, "enabled must be"),
        ({"risk_rules": {"new_device": {"days": 3}}}, "unknown settings days"),
        ({"risk_rules": {"recent_port_in": {"days": -1}}}, "days must be"),
        ({"risk_rules": {"recent_port_in": {"days": True}}}, "days must be"),
        ({"risk_rules": {"recent_port_in": "off"}}, "must be an object"),
        ({"risk_rules": {"sim_change_lock": {"enabled": False}}}, "cannot be weakened"),
        ({"risk_rules": {"sim_change_lock": {"outcome": "review"}}}, "cannot be weakened"),
        ({"risk_rules": ["new_device"]}, "risk_rules must be"),
        ({"four_eyes_rules": ["nope"]}, "unknown risk rules nope"),
        ({"cooling_off_hours": {"bored": 2}}, "unknown reason"),
        ({"cooling_off_hours": {"lost": -1}}, "hours >= 0"),
    ],
)
def test_invalid_risk_settings_are_refused(policy: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        BrandPolicy.from_dict(policy)
    assert words in err.value.message


def test_valid_risk_settings_round_trip() -> None:
    data = {
        "risk_rules": {"new_country": {"outcome": "review"}, "agent_history": {"max_requests": 9}},
        "four_eyes_rules": ["new_country"],
        "cooling_off_hours": {"lost": 2, "stolen": 0.5},
    }
    policy = BrandPolicy.from_dict(data)
    assert BrandPolicy.from_dict(policy.to_dict()) == policy


# ---------------------------------------------------------------- a missing signal (issue 13.5)


@pytest.mark.parametrize(
    ("rule", "present"),
    [("new_device", {"country": "DK", "known_countries": ("DK",)}),
     ("new_country", {"device_id": "a" * 64, "known_devices": ("a" * 64,)})],
)  # fmt: skip
def test_a_self_service_request_missing_the_signal_steps_up_by_default(
    rule: str, present: dict[str, Any]
) -> None:
    result = assess(facts(self_service=True, **present), POLICY)
    assert [(f.rule, f.outcome) for f in result.findings] == [(rule, RiskOutcome.STEP_UP)]
    assert "self-service" in result.findings[0].reason
    # the same request from a trusted caller (staff, an API client) is not held for it
    assert assess(facts(self_service=False, **present), POLICY).findings == ()


@pytest.mark.parametrize("choice", ["ignore", "allow", "step_up", "review", "deny"])
def test_the_brand_chooses_what_a_missing_signal_means_per_origin(choice: str) -> None:
    policy = BrandPolicy(
        missing_signal={"new_device": {"self_service": choice, "trusted": choice}},
        risk_rules={"new_country": {"enabled": False}},
    )
    for self_service in (True, False):
        found = assess(facts(self_service=self_service), policy).findings
        if choice == "ignore":
            assert found == ()
        else:
            assert [(f.rule, f.outcome.value) for f in found] == [("new_device", choice)]


def test_a_disabled_rule_does_not_fire_for_a_missing_signal_either() -> None:
    policy = BrandPolicy(risk_rules={"new_device": {"enabled": False}})
    assert [f.rule for f in assess(facts(self_service=True), policy).findings] == ["new_country"]


def test_a_present_signal_is_judged_by_the_rule_not_the_fallback() -> None:
    policy = BrandPolicy(missing_signal={"new_device": {"self_service": "deny"}})
    new = facts(self_service=True, device_id="b" * 64, country="DK", known_countries=("DK",))
    (finding,) = assess(new, policy).findings
    assert (finding.rule, finding.outcome) == ("new_device", RiskOutcome.STEP_UP)
    assert "has not used before" in finding.reason


def test_the_policy_shows_every_missing_signal_choice_with_defaults_filled_in() -> None:
    policy = BrandPolicy.from_dict({"missing_signal": {"new_country": {"self_service": "ignore"}}})
    assert policy.missing_signal == {
        "new_device": {"self_service": "step_up", "trusted": "ignore"},
        "new_country": {"self_service": "ignore", "trusted": "ignore"},
    }
    assert BrandPolicy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"recent_port_in": {}}, "has no signal that can be missing"),
        ({"new_device": "ignore"}, "must be an object"),
        ({"new_device": {"browser": "ignore"}}, "unknown origin 'browser'"),
        ({"new_device": {"self_service": "maybe"}}, "must be one of ignore, allow"),
        (["new_device"], "missing_signal must be an object"),
    ],
)
def test_invalid_missing_signal_settings_are_refused(given: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        BrandPolicy.from_dict({"missing_signal": given})
    assert words in err.value.message
