"""The shared core-network rules, without any adapter."""

from __future__ import annotations

import datetime as dt

import pytest

from resim.adapters.corenet import rules
from resim.adapters.corenet.rules import CoreSubscriber, MovePlan
from resim.errors import ExternalError, InvalidInput

A, B, C = "001010000000001", "001010000000002", "001010000000003"
M = "+4520123456"


def sub(imsi: str, msisdn: str | None = None, *, enabled: bool = True, retired: bool = False):
    return CoreSubscriber(imsi=imsi, msisdn=msisdn, enabled=enabled, retired=retired)


def plan(new, old, holder, *, new_imsi=B, old_imsi=A):
    return rules.plan_move(
        msisdn=M, new=new, new_imsi=new_imsi, old=old, old_imsi=old_imsi, holder=holder
    )


def code_of(call) -> str:
    with pytest.raises(ExternalError) as info:
        call()
    assert info.value.retryable is False
    return info.value.code


class TestPlanMove:
    def test_a_first_binding_binds_without_clearing(self) -> None:
        assert plan(sub(B), None, None, old_imsi=None) == MovePlan(bind=True, clear_imsi=None)

    def test_a_move_clears_the_old_imsi_then_binds(self) -> None:
        assert plan(sub(B), sub(A, M), A) == MovePlan(bind=True, clear_imsi=A)

    def test_a_number_already_on_the_new_imsi_is_a_no_op(self) -> None:
        assert plan(sub(B, M), sub(A), B) == rules.NOOP
        assert plan(sub(B, M), None, B, old_imsi=None) == rules.NOOP

    def test_a_free_number_with_an_old_imsi_named_is_bound(self) -> None:
        assert plan(sub(B), sub(A), None) == MovePlan(bind=True, clear_imsi=None)

    def test_an_unknown_new_imsi_is_refused_before_anything_else(self) -> None:
        assert code_of(lambda: plan(None, None, C)) == "CORE_UNKNOWN_IMSI"

    def test_an_unknown_old_imsi_is_refused(self) -> None:
        assert code_of(lambda: plan(sub(B), None, None)) == "CORE_UNKNOWN_IMSI"

    def test_a_retired_new_imsi_is_refused(self) -> None:
        dead = sub(B, enabled=False, retired=True)
        assert code_of(lambda: plan(dead, sub(A, M), A)) == "CORE_IMSI_RETIRED"

    def test_a_number_on_a_third_imsi_is_a_conflict(self) -> None:
        assert code_of(lambda: plan(sub(B), sub(A), C)) == "CORE_MSISDN_CONFLICT"
        assert code_of(lambda: plan(sub(B), None, C, old_imsi=None)) == "CORE_MSISDN_CONFLICT"

    def test_a_new_imsi_with_another_number_is_refused(self) -> None:
        busy = sub(B, "+4520999999")
        assert code_of(lambda: plan(busy, sub(A, M), A)) == "CORE_IMSI_HAS_OTHER_MSISDN"

    def test_a_suspended_new_imsi_may_receive_the_number(self) -> None:
        assert plan(sub(B, enabled=False), sub(A, M), A).bind is True


class TestAccessRules:
    def test_suspend_is_needed_only_for_an_enabled_live_imsi(self) -> None:
        assert rules.needs_suspend(sub(A)) is True
        assert rules.needs_suspend(sub(A, enabled=False)) is False
        assert rules.needs_suspend(sub(A, enabled=False, retired=True)) is False

    def test_resume_is_needed_only_for_a_suspended_imsi_and_refused_when_retired(self) -> None:
        assert rules.needs_resume(sub(A, enabled=False)) is True
        assert rules.needs_resume(sub(A)) is False
        dead = sub(A, enabled=False, retired=True)
        assert code_of(lambda: rules.needs_resume(dead)) == "CORE_IMSI_RETIRED"

    def test_retire_is_refused_while_the_imsi_holds_a_number(self) -> None:
        assert code_of(lambda: rules.needs_retire(sub(A, M))) == "CORE_MSISDN_STILL_BOUND"
        assert rules.needs_retire(sub(A)) is True
        assert rules.needs_retire(sub(A, enabled=False, retired=True)) is False

    def test_holds_are_needed_when_they_differ_and_refused_when_retired(self) -> None:
        t = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        held = CoreSubscriber(A, None, True, False, sms_hold_until=t)
        assert rules.needs_holds(held, t, None) is False
        assert rules.needs_holds(held, None, None) is True
        assert rules.needs_holds(held, t, t) is True
        dead = sub(A, enabled=False, retired=True)
        assert code_of(lambda: rules.needs_holds(dead, t, None)) == "CORE_IMSI_RETIRED"

    def test_in_service_means_enabled_and_not_retired(self) -> None:
        assert sub(A).in_service is True
        assert sub(A, enabled=False).in_service is False
        assert sub(A, enabled=True, retired=True).in_service is False

    def test_require_refuses_a_missing_record(self) -> None:
        assert code_of(lambda: rules.require(None, A)) == "CORE_UNKNOWN_IMSI"
        assert rules.require(sub(A), A) == sub(A)


class TestValidation:
    @pytest.mark.parametrize("good", ["001010", "001010000000001", "262019876543210"])
    def test_an_imsi_of_6_to_15_digits_is_accepted(self, good: str) -> None:
        assert rules.check_imsi(good) == good

    @pytest.mark.parametrize("bad", ["", "00101", "0010100000000011", "00101O000000001", " 001010"])
    def test_other_imsis_are_invalid(self, bad: str) -> None:
        with pytest.raises(InvalidInput):
            rules.check_imsi(bad)

    @pytest.mark.parametrize("good", ["+4520123456", "+12", "+123456789012345"])
    def test_e164_numbers_are_accepted(self, good: str) -> None:
        assert rules.check_msisdn(good) == good

    @pytest.mark.parametrize("bad", ["4520123456", "+0123", "+1", "+1234567890123456", "+45 20"])
    def test_other_numbers_are_invalid(self, bad: str) -> None:
        with pytest.raises(InvalidInput):
            rules.check_msisdn(bad)

    def test_aware_datetimes_are_normalised_to_utc_and_naive_ones_refused(self) -> None:
        cet = dt.timezone(dt.timedelta(hours=1))
        value = rules.check_aware(dt.datetime(2030, 1, 1, 13, tzinfo=cet), "x")
        assert value == dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
        assert value is not None and value.tzinfo is dt.UTC
        assert rules.check_aware(None, "x") is None
        with pytest.raises(InvalidInput, match="x must be timezone-aware"):
            rules.check_aware(dt.datetime(2030, 1, 1), "x")


class TestErrors:
    def test_busy_and_unavailable_are_retryable(self) -> None:
        assert (rules.busy("x").code, rules.busy("x").retryable) == ("CORE_BUSY", True)
        unavailable = rules.unavailable("x")
        assert (unavailable.code, unavailable.retryable) == ("CORE_UNAVAILABLE", True)

    def test_a_conflict_names_the_holder(self) -> None:
        err = rules.msisdn_conflict(M, C)
        assert C in err.message and M in err.message
