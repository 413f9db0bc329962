from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resim.domain.identifiers import (
    iccid_with_check_digit,
    luhn_check_digit,
    mask_msisdn,
    normalize_eid,
    normalize_iccid,
    normalize_imsi,
    normalize_msisdn,
)
from resim.errors import InvalidInput


def test_known_luhn_digit() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the classic worked example


@given(st.text(alphabet="0123456789", min_size=15, max_size=17))
def test_generated_iccids_validate(body: str) -> None:
    iccid = iccid_with_check_digit("89" + body)
    assert normalize_iccid(iccid) == iccid


def test_padded_iccid_loses_its_f() -> None:
    iccid = iccid_with_check_digit("894500100000000001")
    assert len(iccid) == 19
    assert normalize_iccid(iccid + "F") == iccid


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "89",
        "8945001000000000000X",
        "99450010000000000017",
        "89450010000000000018",
        "8945001000000000000171",
    ],
)
def test_bad_iccids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_iccid(bad)


def test_imsi_and_eid_shapes() -> None:
    assert normalize_imsi("238010000000001") == "238010000000001"
    with pytest.raises(InvalidInput):
        normalize_imsi("23801A")
    assert normalize_eid("8" * 32) == "8" * 32
    with pytest.raises(InvalidInput):
        normalize_eid("8" * 31)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+45 20 12 34 56", "+4520123456"),
        ("+47 412 34 567", "+4741234567"),
        ("+39 312 345 6789", "+393123456789"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_msisdns_normalise_to_e164(raw: str, e164: str) -> None:
    assert normalize_msisdn(raw) == e164


def test_national_number_needs_region() -> None:
    assert normalize_msisdn("20 12 34 56", default_region="DK") == "+4520123456"
    with pytest.raises(InvalidInput):
        normalize_msisdn("20 12 34 56")
    with pytest.raises(InvalidInput):
        normalize_msisdn("+45 1")


def test_mask_keeps_country_and_last_two() -> None:
    assert mask_msisdn("+4520123456") == "+45******56"
