"""Brand.policy is parsed once per content of policy_data, and a change is seen."""

from __future__ import annotations

import pytest

from resim.domain.model import Brand
from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput


def brand(policy: dict[str, object]) -> Brand:
    return Brand(
        id="b1", name="B", country="DK", currency="DKK", language="da",
        timezone="Europe/Copenhagen", policy=policy,
    )  # fmt: skip


def test_equal_data_gives_the_same_parsed_policy() -> None:
    a, b = brand({"account_max_failures": 3}), brand({"account_max_failures": 3})
    assert a.policy is a.policy is b.policy
    assert a.policy == BrandPolicy.from_dict({"account_max_failures": 3})


def test_a_changed_policy_is_seen_replaced_or_mutated_in_place() -> None:
    b = brand({})
    first = b.policy
    b.policy_data = {**b.policy_data, "fee": {"amount_minor": 4900}}
    assert b.policy.fee.amount_minor == 4900
    b.policy_data["fee"]["amount_minor"] = 100  # type: ignore[index]
    assert b.policy.fee.amount_minor == 100
    b.policy_data = {}
    assert b.policy == first and b.policy is b.policy  # parsed again, then kept


def test_a_brand_of_the_same_id_with_other_data_gets_its_own_policy() -> None:
    one, other = brand({"fee": {"amount_minor": 1}}), brand({"fee": {"amount_minor": 2}})
    assert one.id == other.id
    assert [one.policy.fee.amount_minor, other.policy.fee.amount_minor] == [1, 2]
    assert one.policy.fee.amount_minor == 1


def test_the_cached_policy_shares_nothing_with_the_data() -> None:
    data: dict[str, object] = {"delivery_modes": ["esim"]}
    policy = brand(data).policy
    data["delivery_modes"].append("pickup")  # type: ignore[attr-defined]
    assert policy.delivery_modes == ["esim"]


def test_an_invalid_policy_still_raises_every_time() -> None:
    b = brand({"no_such_field": 1})
    for _ in range(2):
        with pytest.raises(InvalidInput):
            _ = b.policy
