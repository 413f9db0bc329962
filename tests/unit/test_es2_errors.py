"""Es2StatusError: stable codes, retryable only for 1.2/4.x, no secrets in messages."""

from __future__ import annotations

import pytest

from resim.adapters.es2.errors import (
    STATUS_CODES,
    Es2StatusError,
    code_for,
    is_retryable_status,
    redact,
    smdp_unavailable,
)
from resim.errors import ExternalError


@pytest.mark.parametrize(
    ("pair", "code"),
    [
        (("1.1", "1.1"), "ES2_REQUESTER_UNKNOWN"),
        (("1.1", "1.2"), "ES2_REQUESTER_NOT_ALLOWED"),
        (("1.6", "2.2"), "ES2_MANDATORY_MISSING"),
        (("1.6", "2.1"), "ES2_INVALID_PARAMETER"),
        (("1.2", "4.4"), "ES2_BUSY"),
        (("1.2", "4.2"), "ES2_EXECUTION_ERROR"),
        (("8.2.1", "3.9"), "ES2_ICCID_UNKNOWN"),
        (("8.2.1", "3.3"), "ES2_PROFILE_NOT_AVAILABLE"),
        (("8.2.1", "3.5"), "ES2_WRONG_STATE"),
        (("8.2.1", "3.10"), "ES2_EID_MISMATCH"),
        (("8.1.1", "3.10"), "ES2_EID_MISMATCH"),
        (("8.2.5", "3.9"), "ES2_PROFILE_TYPE_UNKNOWN"),
        (("8.2.5", "3.7"), "ES2_PROFILE_TYPE_EXHAUSTED"),
        (("8.2.6", "3.3"), "ES2_MATCHING_ID_USED"),
        (("8.9", "5.1"), "ES2_SMDS_UNREACHABLE"),
    ],
)
def test_every_documented_pair_has_a_stable_code(pair: tuple[str, str], code: str) -> None:
    assert code_for("Failed", *pair) == code
    err = Es2StatusError(
        function="downloadOrder", status="Failed", subject_code=pair[0], reason_code=pair[1]
    )
    assert err.code == code
    assert isinstance(err, ExternalError)
    assert err.retryable is (pair[0] == "1.2")


def test_unlisted_pairs_fall_back_by_status_and_are_permanent() -> None:
    assert code_for("Failed", "9.9", "9.9") == "ES2_FAILED"
    assert code_for("Expired", "9.9", "9.9") == "ES2_EXPIRED"
    assert not is_retryable_status("9.9", "4.4")
    assert is_retryable_status("1.2", "4.1")


def test_every_table_pair_is_classified() -> None:
    retryable = {pair for pair in STATUS_CODES if is_retryable_status(*pair)}
    assert retryable == {("1.2", "4.2"), ("1.2", "4.4")}


def test_the_message_names_function_and_codes_and_keeps_peer_text_short() -> None:
    err = Es2StatusError(
        function="confirmOrder",
        status="Failed",
        subject_code="8.2.6",
        reason_code="3.3",
        peer_message="x" * 500,
    )
    assert "confirmOrder" in err.message and "8.2.6/3.3" in err.message
    assert len(err.message) < 320


def test_redact_removes_every_secret() -> None:
    text = "matchingId ABCDE-12345 with code 998877 refused"
    assert (
        redact(text, ["ABCDE-12345", "998877", None, ""]) == "matchingId *** with code *** refused"
    )
    assert redact(None, ["x"]) is None


def test_transport_failures_are_retryable_smdp_unavailable() -> None:
    err = smdp_unavailable("releaseProfile", "HTTP 502")
    assert (err.code, err.retryable) == ("SMDP_UNAVAILABLE", True)
