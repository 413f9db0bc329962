"""Property tests: whatever resim builds, a peer's parser reads back unchanged."""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from resim.domain.activation import (
    IOS_INSTALL_PREFIX,
    MAX_CODE_LENGTH,
    ActivationCode,
    parse_activation_code,
)
from resim.errors import InvalidInput

_LDH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@st.composite
def labels(draw: st.DrawFn) -> str:
    inner = draw(st.text(alphabet=_LDH + "-", max_size=10))
    first = draw(st.sampled_from(_LDH))
    if not inner:
        return first
    return first + inner + draw(st.sampled_from(_LDH))


@st.composite
def fqdns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(labels(), min_size=1, max_size=4))
    tld = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6))
    return ".".join([*parts, tld])


strict_ids = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=40)
peer_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="$"),
    min_size=1,
    max_size=40,
)
oids = st.lists(st.integers(min_value=0, max_value=99999), min_size=1, max_size=8).map(
    lambda arcs: "1." + ".".join(str(a) for a in arcs)
)


@given(fqdns(), strict_ids, st.none() | oids, st.booleans())
def test_strict_codes_round_trip_through_text_and_qr_payload(
    address: str, matching_id: str, oid: str | None, required: bool
) -> None:
    c = ActivationCode(address, matching_id, oid, required)
    assert parse_activation_code(c.text) == c
    assert parse_activation_code(c.qr_payload) == c
    assert unquote(c.ios_install_url.removeprefix(IOS_INSTALL_PREFIX)) == c.qr_payload
    assert not c.text.endswith("$")
    assert len(c.text) <= MAX_CODE_LENGTH


@given(fqdns(), peer_ids, st.none() | oids, st.booleans())
def test_peer_codes_round_trip(
    address: str, matching_id: str, oid: str | None, required: bool
) -> None:
    c = ActivationCode.from_peer(address, matching_id, oid, required)
    assert parse_activation_code(c.qr_payload) == c
    assert c.text.count("$") == 2 + (oid is not None or required) + required


@given(st.text(max_size=300))
def test_parsing_any_text_either_fails_cleanly_or_gives_a_stable_code(text: str) -> None:
    try:
        c = parse_activation_code(text)
    except InvalidInput:
        return
    assert parse_activation_code(c.text) == c
    assert all(field and not field.isspace() for field in c.text.split("$")[:3])


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-$:.", max_size=60))
def test_parsing_code_like_text_either_fails_cleanly_or_gives_a_stable_code(text: str) -> None:
    try:
        c = parse_activation_code("1$smdp.example.com$" + text)
    except InvalidInput:
        return
    assert parse_activation_code(c.text) == c
