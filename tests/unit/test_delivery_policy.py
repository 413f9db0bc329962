"""Delivery modes in the brand policy, the masked postal address, the mode a request gets."""

from __future__ import annotations

import pytest

from resim.demo.demo_data import DEMO_BRANDS
from resim.domain.identifiers import mask_postal_address
from resim.domain.model import DeliveryMode, SimForm
from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput
from resim.services.replacement.open_spec import resolve_delivery


class TestThePolicy:
    def test_all_three_modes_and_no_surcharge_by_default(self) -> None:
        policy = BrandPolicy()
        assert policy.delivery_modes == ["esim", "pickup", "courier"]
        assert policy.courier_fee_minor == 0

    def test_the_fields_survive_a_round_trip_through_a_dict(self) -> None:
        policy = BrandPolicy(delivery_modes=["pickup"], courier_fee_minor=0)
        again = BrandPolicy.from_dict(policy.to_dict())
        assert again.delivery_modes == ["pickup"] and again == policy
        surcharged = BrandPolicy.from_dict({"courier_fee_minor": 4900})
        assert surcharged.courier_fee_minor == 4900

    @pytest.mark.parametrize(
        ("fields", "words"),
        [
            ({"delivery_modes": []}, "at least one"),
            ({"delivery_modes": ["drone"]}, "unknown mode 'drone'"),
            ({"delivery_modes": ["esim", "esim"]}, "twice"),
            ({"courier_fee_minor": -1}, "negative"),
        ],
    )
    def test_bad_settings_are_refused_with_a_reason(
        self, fields: dict[str, object], words: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            BrandPolicy.from_dict(fields)
        assert words in caught.value.message

    def test_one_demo_brand_offers_no_courier_and_all_offer_a_card(self) -> None:
        modes = {b.spec.id: b.spec.policy.delivery_modes for b in DEMO_BRANDS}
        assert [b for b, m in modes.items() if "courier" not in m] == ["fjordnett-no"]
        assert all("pickup" in m for m in modes.values())


class TestTheModeOfARequest:
    def test_a_form_alone_means_esim_or_pickup(self) -> None:
        assert resolve_delivery(None, None) == DeliveryMode.ESIM
        assert resolve_delivery("physical", None) == DeliveryMode.PICKUP
        assert resolve_delivery("esim", None) == DeliveryMode.ESIM

    def test_a_mode_decides_the_form_and_a_contradiction_is_refused(self) -> None:
        assert resolve_delivery(None, "courier").form == SimForm.PHYSICAL
        assert resolve_delivery("physical", "courier") == DeliveryMode.COURIER
        with pytest.raises(InvalidInput) as caught:
            resolve_delivery("esim", "pickup")
        assert caught.value.code == "FORM_MISMATCH"
        with pytest.raises(InvalidInput) as unknown:
            resolve_delivery(None, "drone")
        assert unknown.value.code == "INVALID_DELIVERY_MODE"


def test_the_masked_address_keeps_initials_and_punctuation_only() -> None:
    masked = mask_postal_address("Vestergade 12, 1050 København K")
    assert masked == "V********* 1*, 1*** K******** K"
    assert mask_postal_address("12 rue de la Paix") == "1* r** d* l* P***"
