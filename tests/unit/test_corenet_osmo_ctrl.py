"""CTRL message framing and parsing (osmo-hlr), without a socket."""

from __future__ import annotations

import pytest

from resim.adapters.corenet.osmo_ctrl import (
    CtrlError,
    encode_frame,
    parse_message,
    parse_table,
)
from resim.errors import ExternalError


class TestFraming:
    def test_a_frame_is_length_osmo_proto_ctrl_ext_then_text(self) -> None:
        frame = encode_frame("GET 1 subscriber.by-imsi-001010000000001.info")
        text = b"GET 1 subscriber.by-imsi-001010000000001.info"
        assert frame[:2] == (len(text) + 1).to_bytes(2, "big")  # ext byte + text
        assert frame[2] == 0xEE
        assert frame[3] == 0x00
        assert frame[4:] == text

    def test_text_that_does_not_fit_one_frame_is_refused(self) -> None:
        with pytest.raises(ValueError):
            encode_frame("x" * 0xFFFF)


class TestParsing:
    def test_a_get_reply_keeps_spaces_and_newlines_of_its_value(self) -> None:
        msg = parse_message("GET_REPLY 7 subscriber.by-imsi-1.info \nid\t1\nimsi\t1")
        assert (msg.kind, msg.id, msg.variable) == ("GET_REPLY", "7", "subscriber.by-imsi-1.info")
        assert msg.value == "\nid\t1\nimsi\t1"

    def test_a_set_reply(self) -> None:
        msg = parse_message("SET_REPLY 3 subscriber.by-imsi-1.msisdn OK")
        assert (msg.kind, msg.id, msg.value) == ("SET_REPLY", "3", "OK")

    def test_an_error_carries_its_reason(self) -> None:
        msg = parse_message("ERROR 9 Update MSISDN failed")
        assert (msg.kind, msg.id, msg.variable, msg.value) == (
            "ERROR",
            "9",
            None,
            "Update MSISDN failed",
        )

    def test_a_trap_has_no_id(self) -> None:
        msg = parse_message("TRAP bts.0.location 1,fix2d,1,2,3")
        assert (msg.kind, msg.id, msg.variable) == ("TRAP", None, "bts.0.location")

    @pytest.mark.parametrize("text", ["HELLO 1 x", "GET_REPLY 1", ""])
    def test_garbage_is_a_protocol_error(self, text: str) -> None:
        with pytest.raises(ExternalError) as info:
            parse_message(text)
        assert info.value.code == "CORE_PROTOCOL_ERROR"

    def test_an_info_table_becomes_a_dict(self) -> None:
        value = "\nid\t1\nimsi\t001010000000001\nmsisdn\t4520123456\nnam_cs\t1"
        assert parse_table(value) == {
            "id": "1",
            "imsi": "001010000000001",
            "msisdn": "4520123456",
            "nam_cs": "1",
        }
        assert parse_table("") == {}


class TestCtrlError:
    def test_no_such_subscriber_maps_to_unknown_imsi(self) -> None:
        err = CtrlError("No such subscriber.", variable="subscriber.by-imsi-1.info")
        assert (err.code, err.retryable) == ("CORE_UNKNOWN_IMSI", False)

    def test_other_refusals_are_permanent_rejections(self) -> None:
        err = CtrlError("Update MSISDN failed", variable="subscriber.by-imsi-1.msisdn")
        assert (err.code, err.retryable) == ("CORE_REJECTED", False)
        assert "Update MSISDN failed" in err.message
