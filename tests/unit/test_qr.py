"""QR images: valid PNG and SVG, the right symbol, sensible size, no payload text inside.

No QR decoder is installed, so the PNG is decoded back to its module grid here
(1-bit greyscale, the form segno writes) and compared with
the symbol segno built for the payload; the symbol's own encoding is segno's
well-tested business.
"""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from resim.adapters.qr import BORDER, make_qr, qr_png, qr_svg
from resim.domain.activation import ActivationCode
from resim.errors import InvalidInput

PAYLOAD = ActivationCode("SMDP.EXAMPLE.COM", "K2D7Q-8WZ3M-P4HXA-N6TRB").qr_payload
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    assert data.startswith(PNG_SIGNATURE)
    pos, chunks = len(PNG_SIGNATURE), {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    return chunks


def unfilter(raw: bytes, stride: int) -> list[bytes]:
    """Undo PNG row filters (RFC 2083 section 6) for a 1-bit image: 1 byte per "pixel"."""
    rows: list[bytes] = []
    previous = bytes(stride - 1)
    for start in range(0, len(raw), stride):
        kind, line = raw[start], bytearray(raw[start + 1 : start + stride])
        for i in range(len(line)):
            left = line[i - 1] if i else 0
            up, up_left = previous[i], previous[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[i] = (line[i] + pred) & 0xFF
            else:
                assert kind == 0, f"unknown filter {kind}"
        rows.append(bytes(line))
        previous = bytes(line)
    return rows


def png_modules(data: bytes, scale: int) -> list[list[bool]]:
    """Dark (True) or light for the centre pixel of every module, quiet zone included."""
    chunks = png_chunks(data)
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (1, 0), "expected 1-bit greyscale"
    pixels = unfilter(zlib.decompress(chunks[b"IDAT"]), 1 + (width + 7) // 8)
    assert len(pixels) == height
    return [
        [not (pixels[y][x // 8] >> (7 - x % 8)) & 1 for x in range(scale // 2, width, scale)]
        for y in range(scale // 2, height, scale)
    ]


class TestPng:
    def test_is_a_png_whose_modules_match_the_symbol_for_the_payload(self) -> None:
        scale = 5
        data = qr_png(PAYLOAD, scale=scale)
        assert data.startswith(PNG_SIGNATURE)
        symbol = make_qr(PAYLOAD)
        size = len(symbol.matrix) + 2 * BORDER
        width, height = struct.unpack(">II", png_chunks(data)[b"IHDR"][:8])
        assert (width, height) == (size * scale, size * scale)
        grid = png_modules(data, scale)
        assert len(grid) == size
        expected = [
            [bool(v) for v in row]
            for row in symbol.matrix  # type: ignore[union-attr]
        ]
        assert [row[BORDER:-BORDER] for row in grid[BORDER:-BORDER]] == expected
        assert not any(grid[0]) and not any(row[0] for row in grid), "quiet zone must be light"

    def test_a_different_payload_gives_a_different_image(self) -> None:
        other = ActivationCode("SMDP.EXAMPLE.COM", "AAAAA-8WZ3M-P4HXA-N6TRB").qr_payload
        assert qr_png(PAYLOAD) != qr_png(other)

    def test_size_is_reasonable_for_a_phone_screen_and_a_mail(self) -> None:
        data = qr_png(PAYLOAD)
        width, _ = struct.unpack(">II", png_chunks(data)[b"IHDR"][:8])
        assert 150 <= width <= 400
        assert len(data) < 2_000

    def test_does_not_carry_the_payload_as_text(self) -> None:
        data = qr_png(PAYLOAD)
        assert b"K2D7Q" not in data
        assert not {b"tEXt", b"zTXt", b"iTXt"} & set(png_chunks(data))

    def test_scale_sets_the_pixel_size(self) -> None:
        small = png_chunks(qr_png(PAYLOAD, scale=2))[b"IHDR"][:4]
        large = png_chunks(qr_png(PAYLOAD, scale=8))[b"IHDR"][:4]
        assert struct.unpack(">I", large)[0] == 4 * struct.unpack(">I", small)[0]


class TestSvg:
    def test_is_an_svg_document_of_the_symbol_size(self) -> None:
        data = qr_svg(PAYLOAD, scale=4)
        assert data.startswith(b"<?xml")
        text = data.decode("utf-8")
        assert "<svg" in text and text.rstrip().endswith("</svg>")
        size = (len(make_qr(PAYLOAD).matrix) + 2 * BORDER) * 4
        assert f'width="{size}"' in text and f'height="{size}"' in text

    def test_does_not_carry_the_payload_as_text(self) -> None:
        text = qr_svg(PAYLOAD).decode()
        assert "K2D7Q" not in text
        assert not re.search(r"<(title|desc|metadata)", text)


class TestSymbol:
    def test_activation_code_payload_builds_a_full_qr_code_at_level_m_or_better(self) -> None:
        symbol = make_qr(PAYLOAD)
        assert not symbol.is_micro
        assert symbol.error in {"M", "Q", "H"}
        assert symbol.mode == "alphanumeric"
        assert symbol.version <= 4

    def test_a_lower_case_payload_still_builds_but_needs_byte_mode(self) -> None:
        lower = ActivationCode("smdp.example.com", "K2D7Q-8WZ3M-P4HXA-N6TRB").qr_payload
        symbol = make_qr(lower)
        assert symbol.mode == "byte"
        assert symbol.error in {"M", "Q", "H"}

    def test_a_short_payload_is_never_a_micro_qr(self) -> None:
        assert not make_qr("1").is_micro

    def test_longest_activation_code_fits(self) -> None:
        longest = ActivationCode("SMDP.EXAMPLE.COM", "A" * 235)
        assert len(longest.text) == 254
        assert make_qr(longest.qr_payload).version <= 15


class TestRefusals:
    @pytest.mark.parametrize("render", [qr_png, qr_svg])
    def test_empty_payload(self, render: object) -> None:
        with pytest.raises(InvalidInput):
            render("")  # type: ignore[operator]

    @pytest.mark.parametrize("scale", [0, -1, 41])
    def test_unreasonable_scale(self, scale: int) -> None:
        with pytest.raises(InvalidInput, match="scale"):
            qr_png(PAYLOAD, scale=scale)

    def test_payload_too_long_for_any_qr_code(self) -> None:
        with pytest.raises(InvalidInput, match="too long") as info:
            qr_png("X" * 8000)
        assert "XXXX" not in str(info.value)
