"""The fast E.164 check agrees with libphonenumber on every number it answers for."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from resim.domain.numbering import e164_valid

CODES = [1, 7, 30, 31, 33, 34, 39, 41, 44, 45, 46, 47, 49, 52, 55, 61, 81, 86, 91, 262, 358]


@pytest.mark.parametrize("code", CODES)
def test_agrees_with_phonenumbers(code: int) -> None:
    rng = random.Random(code)
    region = phonenumbers.region_code_for_country_code(code)
    answered = 0
    for i in range(1500):
        if i % 2 and region != "ZZ":
            kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE,
                               phonenumbers.PhoneNumberType.FIXED_LINE])  # fmt: skip
            ex = phonenumbers.example_number_for_type(region, kind)
            base = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
            k = rng.randint(1, 4)
            number = base[:-k] + "".join(rng.choice("0123456789") for _ in range(k))
        else:
            number = f"+{code}" + "".join(
                rng.choice("0123456789") for _ in range(rng.randint(4, 13))
            )
        fast = e164_valid(number)
        if fast is None:
            continue
        answered += 1
        assert fast == phonenumbers.is_valid_number(phonenumbers.parse(number, None)), number
    assert answered > 500


def test_not_e164_is_left_to_the_library() -> None:
    assert e164_valid("41234567") is None
    assert e164_valid("+47 412 34 567") is None
    assert e164_valid("+4741234567") is True
    # Argentina's national prefix pattern may match nothing at all: always the library.
    assert e164_valid("+5491123456789") is None
