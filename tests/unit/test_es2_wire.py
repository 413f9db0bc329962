"""ES2+ wire helpers: ICCID pad, headers, camelCase bodies, liberal parsing."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from resim.adapters.es2 import wire
from resim.services.ports import DownloadProgress

ICCID19 = "8999001000000000012"


class TestIccidPad:
    def test_a_19_digit_iccid_gets_a_trailing_f(self) -> None:
        assert wire.pad_iccid(ICCID19) == ICCID19 + "F"

    @pytest.mark.parametrize("iccid", ["899900100000000001", "89990010000000000001"])
    def test_even_lengths_are_sent_as_they_are(self, iccid: str) -> None:
        assert wire.pad_iccid(iccid) == iccid

    @pytest.mark.parametrize("raw", [ICCID19 + "F", ICCID19 + "f", f" {ICCID19}F ", ICCID19])
    def test_the_pad_is_stripped_on_receipt(self, raw: str) -> None:
        assert wire.strip_iccid_pad(raw) == ICCID19


class TestAdminProtocol:
    @pytest.mark.parametrize("value", ["gsma/rsp/v2.5.0", "gsma/rsp/v2.2.0", "GSMA/RSP/v2.1"])
    def test_any_v2_minor_is_accepted(self, value: str) -> None:
        assert wire.admin_protocol_ok(value)

    @pytest.mark.parametrize("value", [None, "", "gsma/rsp/v3.0.0", "gsma/rsp/v1.0", "text/html"])
    def test_others_are_rejected(self, value: str | None) -> None:
        assert not wire.admin_protocol_ok(value)

    def test_request_headers_name_the_protocol(self) -> None:
        headers = wire.es2_headers()
        assert headers["X-Admin-Protocol"] == "gsma/rsp/v2.5.0"
        assert headers["Content-Type"] == "application/json"


class TestBodies:
    def test_requests_are_camel_case_without_absent_fields(self) -> None:
        body = wire.ConfirmOrderRequest(
            header=wire.RequestHeader(
                function_requester_identifier="op", function_call_identifier="c1"
            ),
            iccid=wire.pad_iccid(ICCID19),
            release_flag=True,
        )
        assert wire.dump(body) == {
            "header": {"functionRequesterIdentifier": "op", "functionCallIdentifier": "c1"},
            "iccid": ICCID19 + "F",
            "releaseFlag": True,
        }

    def test_unknown_fields_are_ignored_on_receipt(self) -> None:
        parsed = wire.ConfirmOrderResponse.model_validate(
            {
                "header": {"functionExecutionStatus": {"status": "Executed-Success"}},
                "matchingId": "ABC",
                "vendorExtension": {"x": 1},
            }
        )
        assert parsed.matching_id == "ABC"

    def test_failure_body_carries_subject_and_reason(self) -> None:
        assert wire.failure_body("8.2.1", "3.9", "ICCID unknown") == {
            "header": {
                "functionExecutionStatus": {
                    "status": "Failed",
                    "statusCodeData": {
                        "subjectCode": "8.2.1",
                        "reasonCode": "3.9",
                        "message": "ICCID unknown",
                    },
                }
            }
        }

    def test_invalid_status_tells_missing_from_invalid(self) -> None:
        with pytest.raises(ValidationError) as missing:
            wire.ReleaseProfileRequest.model_validate(
                {"header": {"functionRequesterIdentifier": "a", "functionCallIdentifier": "b"}}
            )
        got = wire.invalid_status(missing.value)
        assert (got.subject_code, got.reason_code, got.subject_identifier) == (
            "1.6",
            "2.2",
            "iccid",
        )
        with pytest.raises(ValidationError) as invalid:
            wire.ConfirmOrderRequest.model_validate(
                {
                    "header": {"functionRequesterIdentifier": "a", "functionCallIdentifier": "b"},
                    "iccid": ICCID19,
                    "releaseFlag": "perhaps",
                }
            )
        got = wire.invalid_status(invalid.value)
        assert (got.reason_code, got.subject_identifier) == ("2.1", "releaseFlag")


class TestDownloadProgressInfo:
    def _progress(self, **extra: object) -> DownloadProgress:
        return DownloadProgress(
            smdp_id="smdp",
            call_id="n1",
            iccid=ICCID19,
            profile_type="std",
            timestamp=dt.datetime(2025, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
            notification_point_id=4,
            status="Failed",
            subject_code="8.1",
            reason_code="4.2",
            message="install failed",
            **extra,  # type: ignore[arg-type]
        )

    def test_the_body_pads_the_iccid_and_writes_a_zoned_timestamp(self) -> None:
        body = wire.dump(wire.HandleDownloadProgressInfoRequest.from_progress(self._progress()))
        assert body["iccid"] == ICCID19 + "F"
        assert body["timestamp"] == "2025-05-06T07:08:09Z"
        assert body["notificationPointStatus"] == {
            "status": "Failed",
            "statusCodeData": {
                "subjectCode": "8.1",
                "reasonCode": "4.2",
                "message": "install failed",
            },
        }
        assert body["header"] == {
            "functionRequesterIdentifier": "smdp",
            "functionCallIdentifier": "n1",
        }

    def test_round_trip_gives_the_same_progress(self) -> None:
        progress = self._progress(eid="8" * 32)
        body = wire.dump(wire.HandleDownloadProgressInfoRequest.from_progress(progress))
        parsed = wire.HandleDownloadProgressInfoRequest.model_validate(body)
        assert parsed.to_progress(iccid=ICCID19, eid="8" * 32) == progress

    def test_a_naive_timestamp_is_read_as_utc(self) -> None:
        body = wire.dump(wire.HandleDownloadProgressInfoRequest.from_progress(self._progress()))
        body["timestamp"] = "2025-05-06T07:08:09"
        parsed = wire.HandleDownloadProgressInfoRequest.model_validate(body)
        assert parsed.timestamp.tzinfo is not None

    def test_an_unknown_status_is_invalid(self) -> None:
        body = wire.dump(wire.HandleDownloadProgressInfoRequest.from_progress(self._progress()))
        body["notificationPointStatus"] = {"status": "Maybe"}
        with pytest.raises(ValidationError):
            wire.HandleDownloadProgressInfoRequest.model_validate(body)
