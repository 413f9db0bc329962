"""The brand-policy knobs of issue 12: how an agent's eSIM reaches the customer and how
many reviewers unfreeze an account. Safe defaults; anything else refused at load."""

from __future__ import annotations

import pytest

from resim.domain.policy import AGENT_ESIM_HANDOFFS, BrandPolicy
from resim.errors import InvalidInput
from resim.services.console.agent_actions import id_check_suffices


def test_defaults_are_the_screen_and_one_reviewer() -> None:
    policy = BrandPolicy()
    assert policy.agent_esim_handoff == "screen"
    assert policy.unfreeze_reviewers == 1
    assert set(AGENT_ESIM_HANDOFFS) == {"screen", "email"}


def test_a_stored_policy_round_trips_and_an_empty_one_gets_the_defaults() -> None:
    chosen = BrandPolicy(agent_esim_handoff="email", unfreeze_reviewers=2)
    again = BrandPolicy.from_dict(chosen.to_dict())
    assert (again.agent_esim_handoff, again.unfreeze_reviewers) == ("email", 2)
    assert BrandPolicy.from_dict({}).agent_esim_handoff == "screen"


@pytest.mark.parametrize(
    "knobs",
    [
        {"agent_esim_handoff": "sms"},
        {"agent_esim_handoff": ""},
        {"unfreeze_reviewers": 0},
        {"unfreeze_reviewers": 3},
        {"unfreeze_reviewers": True},
    ],
)
def test_anything_else_is_refused(knobs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        BrandPolicy.from_dict(knobs)


@pytest.mark.parametrize(
    ("combos", "alone"),
    [
        ([["id_document"]], True),
        ([["email_otp"], ["id_document"]], True),
        ([["email_otp", "id_document"]], False),
        ([["email_otp", "pin"], ["totp"]], False),
        ([], False),
    ],
)
def test_whether_the_id_check_alone_verifies(combos: list[list[str]], alone: bool) -> None:
    assert id_check_suffices(combos) is alone
