"""The Activation Code: building (strict), parsing (liberal but safe), rendering."""

from __future__ import annotations

import random
import re
from urllib.parse import unquote

import pytest

from resim.domain.activation import (
    MAX_CODE_LENGTH,
    ActivationCode,
    generate_matching_id,
    parse_activation_code,
)
from resim.errors import InvalidInput

ADDR = "smdp.example.com"
MID = "K2D7Q-8WZ3M-P4HXA-N6TRB"
OID = "1.3.6.1.4.1.31746"


def code(**overrides: object) -> ActivationCode:
    values: dict[str, object] = {"smdp_address": ADDR, "matching_id": MID}
    values.update(overrides)
    return ActivationCode(**values)  # type: ignore[arg-type]


class TestRendering:
    def test_address_and_matching_id_only(self) -> None:
        assert code().text == f"1${ADDR}${MID}"

    def test_with_oid(self) -> None:
        assert code(smdp_oid=OID).text == f"1${ADDR}${MID}${OID}"

    def test_with_oid_and_confirmation_code(self) -> None:
        c = code(smdp_oid=OID, confirmation_code_required=True)
        assert c.text == f"1${ADDR}${MID}${OID}$1"

    def test_confirmation_code_without_oid_leaves_the_oid_field_empty(self) -> None:
        # SGP.22 4.1 example: 1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$$1
        assert code(confirmation_code_required=True).text == f"1${ADDR}${MID}$$1"

    @pytest.mark.parametrize(
        "c",
        [
            code(),
            code(smdp_oid=OID),
            code(confirmation_code_required=True),
            code(smdp_oid=OID, confirmation_code_required=True),
        ],
    )
    def test_never_emits_an_empty_trailing_field(self, c: ActivationCode) -> None:
        assert not c.text.endswith("$")
        assert c.text.split("$")[-1] != ""

    def test_qr_payload_has_the_lpa_prefix(self) -> None:
        assert code().qr_payload == f"LPA:1${ADDR}${MID}"

    def test_ios_install_url_carries_the_url_encoded_qr_payload(self) -> None:
        url = code(confirmation_code_required=True).ios_install_url
        prefix = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="
        assert url.startswith(prefix)
        carddata = url[len(prefix) :]
        assert "$" not in carddata and ":" not in carddata
        assert carddata.startswith("LPA%3A1%24")
        assert unquote(carddata) == f"LPA:1${ADDR}${MID}$$1"

    def test_repr_and_str_hide_the_matching_id(self) -> None:
        c = code()
        assert MID not in repr(c)
        assert MID not in str(c)
        assert ADDR in repr(c)

    def test_is_frozen_and_compares_by_value(self) -> None:
        c = code()
        with pytest.raises(AttributeError):
            c.matching_id = "X"  # type: ignore[misc]
        assert c == code()
        assert hash(c) == hash(code())


class TestBuildingIsStrict:
    @pytest.mark.parametrize(
        "address",
        [
            "",
            "https://smdp.example.com",
            "smdp.example.com:443",
            "smdp.example.com/path",
            "smdp$example.com",
            "smdp.example.com.",  # trailing dot: fine in DNS, not in a code we make
            "localhost",  # not fully qualified
            "10.0.0.1",  # an IP address is not a host name
            "[2001:db8::1]",
            "smdp..example.com",
            "-smdp.example.com",
            "smdp-.example.com",
            "smdp_1.example.com",
            "smdp example.com",
            " smdp.example.com",
            "smdp.example.com\n",
            "smdp.exämple.com",
            ("a" * 64) + ".example.com",  # label longer than 63
            ".".join(["a" * 60] * 5),  # longer than 253
        ],
    )
    def test_rejects_an_address_that_is_not_a_fully_qualified_host_name(self, address: str) -> None:
        with pytest.raises(InvalidInput):
            code(smdp_address=address)

    @pytest.mark.parametrize(
        "address", ["smdp.example.com", "SMDP.GSMA.COM", "a.b", "rsp-1.eu.example.net", "x.co"]
    )
    def test_accepts_host_names(self, address: str) -> None:
        assert code(smdp_address=address).smdp_address == address

    @pytest.mark.parametrize(
        "matching_id",
        ["", "k2d7q-8wz3m", "ABC_123", "ABC 123", "ABC$123", "ABC.123", "ÄBC", "ABC\n", "\nABC"],
    )
    def test_rejects_a_matching_id_outside_0_9_a_z_and_dash(self, matching_id: str) -> None:
        with pytest.raises(InvalidInput):
            code(matching_id=matching_id)

    @pytest.mark.parametrize(
        "oid", ["", "abc", "1.2.", ".1.2", "1..2", "3.1", "1", "1.02", "1.2$1", "1.2\n"]
    )
    def test_rejects_an_oid_that_is_not_dotted_decimal(self, oid: str) -> None:
        with pytest.raises(InvalidInput):
            code(smdp_oid=oid)

    def test_accepts_a_code_of_254_characters_and_refuses_255(self) -> None:
        base = f"1${ADDR}$"
        longest = "A" * (MAX_CODE_LENGTH - len(base))
        assert len(code(matching_id=longest).text) == 254
        with pytest.raises(InvalidInput, match="shorter than 255"):
            code(matching_id=longest + "A")

    def test_the_length_limit_counts_oid_and_flag(self) -> None:
        base = f"1${ADDR}$"
        mid = "A" * (MAX_CODE_LENGTH - len(base) - 2)
        assert len(code(matching_id=mid).text) == 252
        with pytest.raises(InvalidInput):
            code(matching_id=mid, confirmation_code_required=True)  # "$$1" makes it 255

    def test_error_messages_never_echo_the_matching_id(self) -> None:
        secret = "SECRET-MATCHING-ID-9"
        for bad in (secret.lower(), secret + "$", secret + " "):
            with pytest.raises(InvalidInput) as info:
                code(matching_id=bad)
            assert "SECRET" not in info.value.message.upper()
            assert "SECRET" not in str(info.value).upper()


class TestFromPeer:
    def test_accepts_a_lowercase_or_punctuated_matching_id_from_an_smdp(self) -> None:
        c = ActivationCode.from_peer(ADDR, "qr-g-5c_1ls.1w1z9p7")
        assert c.matching_id == "qr-g-5c_1ls.1w1z9p7"
        assert c.text == f"1${ADDR}$qr-g-5c_1ls.1w1z9p7"

    @pytest.mark.parametrize("address", ["smdp", "smdp.example.com.", "10.0.0.1"])
    def test_accepts_any_host_name_of_ldh_labels(self, address: str) -> None:
        assert ActivationCode.from_peer(address, MID).smdp_address == address

    @pytest.mark.parametrize(
        ("address", "matching_id"),
        [
            ("https://smdp.example.com", MID),
            ("smdp.example.com:8443", MID),
            ("smdp$x.com", MID),
            (ADDR, "A$B"),
            (ADDR, "A B"),
            (ADDR, "A\x00B"),
            (ADDR, "A\u00a0B"),
            (ADDR, "ÄBC"),
            ("", ""),
        ],
    )
    def test_still_refuses_anything_unsafe(self, address: str, matching_id: str) -> None:
        with pytest.raises(InvalidInput):
            ActivationCode.from_peer(address, matching_id)

    def test_equals_a_strictly_built_code_with_the_same_fields(self) -> None:
        assert ActivationCode.from_peer(ADDR, MID, OID) == code(smdp_oid=OID)


class TestParsing:
    @pytest.mark.parametrize("prefix", ["", "LPA:", "lpa:", "Lpa:"])
    def test_accepts_the_code_with_or_without_the_lpa_prefix(self, prefix: str) -> None:
        assert parse_activation_code(f"{prefix}1${ADDR}${MID}") == code()

    def test_ignores_surrounding_whitespace_from_a_scanner(self) -> None:
        assert parse_activation_code(f"  LPA:1${ADDR}${MID}\r\n") == code()

    def test_reads_oid_and_confirmation_flag(self) -> None:
        parsed = parse_activation_code(f"1${ADDR}${MID}${OID}$1")
        assert parsed == code(smdp_oid=OID, confirmation_code_required=True)

    def test_reads_an_empty_oid_before_the_flag_as_no_oid(self) -> None:
        parsed = parse_activation_code(f"1${ADDR}${MID}$$1")
        assert parsed.smdp_oid is None
        assert parsed.confirmation_code_required is True

    def test_reads_an_empty_trailing_oid_field_as_no_oid_and_does_not_emit_it(self) -> None:
        parsed = parse_activation_code(f"1${ADDR}${MID}$")
        assert parsed == code()
        assert parsed.text == f"1${ADDR}${MID}"

    @pytest.mark.parametrize("flag", ["", "0", "2", "true", " 1"])
    def test_refuses_a_fifth_field_other_than_1(self, flag: str) -> None:
        # An empty fifth field is read as "required" by one LPA and as "not
        # required" by others: refuse rather than guess.
        with pytest.raises(InvalidInput, match="confirmation-code flag"):
            parse_activation_code(f"1${ADDR}${MID}${OID}${flag}")

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "LPA:",
            "1",
            f"1${ADDR}",
            f"2${ADDR}${MID}",
            f"${ADDR}${MID}",
            f"LPA:LPA:1${ADDR}${MID}",
            f"1${ADDR}${MID}${OID}$1$extra",
            f"1$${MID}",
            f"1$https://{ADDR}${MID}",
            f"1${ADDR}:443${MID}",
            f"1${ADDR}${MID}$not-an-oid",
            f"1${ADDR}$A B",
            "1$" + ADDR + "$" + "A" * 300,
        ],
    )
    def test_refuses_malformed_codes_with_invalid_input(self, text: str) -> None:
        with pytest.raises(InvalidInput):
            parse_activation_code(text)

    @pytest.mark.parametrize(
        "text",
        [
            "1$smdp.example.com$SECRETMID$not-an-oid",
            "1$smdp.example.com$SECRETMID$1.2$7",
            "1$smdp.example.com$SECRET MID",
            "2$smdp.example.com$SECRETMID",
            "1$smdp:1$SECRETMID",
            "1$smdp.example.com$SECRETMID$1.2$1$x",
            "1$smdp.example.com$SECRETMID" + "X" * 300,
        ],
    )
    def test_error_messages_do_not_echo_the_matching_id(self, text: str) -> None:
        with pytest.raises(InvalidInput) as info:
            parse_activation_code(text)
        assert "SECRET" not in info.value.message
        assert "SECRET" not in str(info.value)


class TestGenerateMatchingId:
    def test_has_four_groups_of_five_from_0_9_a_z(self) -> None:
        mid = generate_matching_id()
        assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", mid)

    def test_is_usable_in_a_strictly_built_code(self) -> None:
        assert code(matching_id=generate_matching_id()).text.count("$") == 2

    def test_is_fresh_each_time(self) -> None:
        assert len({generate_matching_id() for _ in range(200)}) == 200

    def test_is_reproducible_with_a_seeded_rng(self) -> None:
        assert generate_matching_id(random.Random(7)) == generate_matching_id(random.Random(7))
        assert generate_matching_id(random.Random(7)) != generate_matching_id(random.Random(8))

    def test_uses_the_whole_alphabet(self) -> None:
        rng = random.Random(1)
        seen = set("".join(generate_matching_id(rng) for _ in range(200)).replace("-", ""))
        assert len(seen) == 36


class TestAnEmptyMatchingId:
    """SGP.22 4.1: the MatchingID may be empty (the SM-DP+ finds the order by EID)."""

    def test_sgp22s_own_example_parses(self) -> None:
        code = parse_activation_code("1$SMDP.GSMA.COM$$1.3.6.1.4.1.31746")
        assert (code.smdp_address, code.matching_id, code.smdp_oid) == (
            "SMDP.GSMA.COM",
            "",
            "1.3.6.1.4.1.31746",
        )
        assert code.text == "1$SMDP.GSMA.COM$$1.3.6.1.4.1.31746"
        assert code.confirmation_code_required is False

    @pytest.mark.parametrize(
        ("text", "oid", "required"),
        [
            ("LPA:1$SMDP.GSMA.COM$", None, False),
            ("1$SMDP.GSMA.COM$$1.3.6.1.4.1.31746$1", "1.3.6.1.4.1.31746", True),
            ("1$SMDP.GSMA.COM$$$1", None, True),
        ],
    )
    def test_every_form_round_trips(self, text: str, oid: str | None, required: bool) -> None:
        code = parse_activation_code(text)
        assert (code.matching_id, code.smdp_oid, code.confirmation_code_required) == (
            "",
            oid,
            required,
        )
        assert parse_activation_code(code.qr_payload) == code

    def test_resim_itself_never_makes_one(self) -> None:
        with pytest.raises(InvalidInput, match="matching ID is empty"):
            ActivationCode(ADDR, "")
