"""SEC-02: which evidence verifies whom (pure rules, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from resim.domain.policy import BrandPolicy
from resim.domain.verification import (
    METHODS,
    SubscriberFacts,
    email_code_alone,
    offered,
    satisfied,
    strength,
    with_legacy_pin,
)
from resim.errors import InvalidInput

KBA = ["name", "birth_date", "address", "account_number", "last_bill", "recent_calls"]
ALL_FACTS = SubscriberFacts(has_pin=True, has_password=True, has_totp=True)


def verification(**channels: Any) -> dict[str, Any]:
    base = BrandPolicy().verification
    return {**base, **channels}


class TestFactsAnyoneCanLookUpNeverSufficeAlone:
    def test_every_public_fact_has_strength_zero(self) -> None:
        assert all(METHODS[m].strength == 0 for m in KBA)
        assert strength(KBA) == 0

    def test_kba_only_evidence_satisfies_no_combination(self) -> None:
        combos = BrandPolicy().verification["agent"]
        assert not satisfied(combos, KBA)
        assert not satisfied([KBA[:2]], KBA)  # even a combination made only of facts

    @pytest.mark.parametrize("field", ["api", "portal", "agent"])
    def test_a_policy_with_a_kba_only_combination_is_refused(self, field: str) -> None:
        with pytest.raises(InvalidInput, match=f"verification.{field}") as err:
            BrandPolicy(verification=verification(**{field: [["name", "birth_date"]]}))
        assert err.value.code == "KBA_ONLY"

    def test_kba_only_unlock_methods_are_refused(self) -> None:
        with pytest.raises(InvalidInput, match="unlock_methods"):
            BrandPolicy(unlock_methods=[["address"]])

    def test_facts_may_accompany_a_real_method_but_add_nothing(self) -> None:
        policy = BrandPolicy(verification=verification(agent=[["id_document", "name"]]))
        assert strength(policy.verification["agent"][0]) == 2


class TestAnSmsToTheNumberBeingReplacedNeverCounts:
    @pytest.mark.parametrize("field", ["api", "portal", "agent"])
    def test_a_policy_naming_sms_otp_is_refused(self, field: str) -> None:
        with pytest.raises(InvalidInput, match=f"verification.{field}") as err:
            BrandPolicy(verification=verification(**{field: [["sms_otp"]]}))
        assert err.value.code == "FORBIDDEN_METHOD"

    def test_sms_otp_is_refused_in_unlock_and_step_up_too(self) -> None:
        with pytest.raises(InvalidInput, match="unlock_methods"):
            BrandPolicy(unlock_methods=[["sms_otp", "pin"]])
        with pytest.raises(InvalidInput, match="step_up_methods"):
            BrandPolicy(step_up_methods=["sms_otp"])

    def test_sms_otp_is_never_offered_nor_satisfies(self) -> None:
        combos = [["sms_otp"], ["email_otp", "pin"]]
        assert offered(combos, ALL_FACTS) == [["email_otp", "pin"]]
        assert not satisfied([["sms_otp"]], ["sms_otp"])

    def test_from_dict_refuses_it_naming_the_field(self) -> None:
        with pytest.raises(InvalidInput, match=r"verification\.api"):
            BrandPolicy.from_dict({"verification": verification(api=[["sms_otp"]])})


class TestPolicyValidation:
    def test_unknown_method_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match=r"verification\.api.*'carrier_pigeon'"):
            BrandPolicy(verification=verification(api=[["carrier_pigeon"]]))

    def test_a_channel_without_methods_is_refused(self) -> None:
        data = BrandPolicy().verification
        del data["portal"]
        with pytest.raises(InvalidInput, match="portal"):
            BrandPolicy(verification=data)

    def test_step_up_must_be_stronger_than_the_usual_methods(self) -> None:
        with pytest.raises(InvalidInput, match="step_up_methods"):
            BrandPolicy(step_up_methods=["pin"])

    def test_defaults_and_the_legacy_profile_are_valid(self) -> None:
        BrandPolicy()
        BrandPolicy(verification=email_code_alone(), require_pin=True)


class TestCombinationsPerChannel:
    def test_defaults_need_two_factors_on_self_service_channels(self) -> None:
        policy = BrandPolicy()
        for channel in ("api", "portal"):
            combos = policy.verification[channel]
            assert not satisfied(combos, ["email_otp"])
            assert not satisfied(combos, ["pin"])
            assert satisfied(combos, ["email_otp", "pin"])
            assert satisfied(combos, ["totp"])
            assert not satisfied(combos, ["id_document"])  # no agent on these channels
        assert satisfied(policy.verification["agent"], ["id_document"])

    def test_offered_lists_only_what_the_subscriber_can_complete(self) -> None:
        combos = BrandPolicy().verification["api"]
        only_pin = SubscriberFacts(has_pin=True, has_password=False, has_totp=False)
        assert offered(combos, only_pin) == [["email_otp", "pin"]]
        nothing = SubscriberFacts(has_pin=False, has_password=False, has_totp=False)
        assert offered(combos, nothing) == []
        assert offered(combos, ALL_FACTS) == combos

    def test_legacy_require_pin_adds_the_pin_to_every_combination(self) -> None:
        assert with_legacy_pin([["email_otp"], ["totp", "pin"]], True) == [
            ["email_otp", "pin"],
            ["totp", "pin"],
        ]
        assert with_legacy_pin([["email_otp"]], False) == [["email_otp"]]
