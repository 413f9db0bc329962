"""The bench's mail sink reads a stored message's request, kind and one-time code from
the raw bytes (no MIME parsing), and agrees with the full parser."""

from __future__ import annotations

import pytest

from resim.adapters.mail.capture import header_value
from resim.adapters.mail.message import wire_message
from resim.bench.stack import _parsed_code, read_delivery
from resim.services.ports import OutgoingMail

URL = "https://portal.resim.test/portal/status/" + "123456" * 14


def mail(text: str, html: str | None = None) -> bytes:
    out = OutgoingMail(
        to="kari@example.com",
        subject="Din kode · your code",
        text=text,
        html=html,
        message_id="req-1.code@resim.test",
        language="nb",
        headers={"X-Resim-Kind": "one_time_code", "X-Resim-Request": "req-1"},
    )
    return wire_message(out, sender="Bench <no-reply@bench.test>").data


@pytest.mark.parametrize(
    "text",
    [
        "Hello,\n\nyour code:\n\n   654321\n\nStatus: https://x.test/s/123456\n",
        "Hei Kåre,\n\nkoden din:\n\n654321\n\n" + URL + "\n",  # 8bit, long line: QP or base64
        "Ünïcode " * 40 + "\n654321\n" + URL + "\n",
    ],
)
def test_the_code_is_the_one_the_full_parser_finds(text: str) -> None:
    raw = mail(text, html=f"<p>{text}</p>")
    got = read_delivery(raw, 1.5)
    assert (got.request_id, got.kind, got.at) == ("req-1", "one_time_code", 1.5)
    assert got.code == "654321" == _parsed_code(raw)


def test_header_value_unfolds_and_ignores_the_body() -> None:
    raw = b"Message-ID:\r\n <a@b>\r\nX-Resim-Kind: esim_ready\r\n\r\nX-Resim-Request: no\r\n"
    assert header_value(raw, "message-id") == "<a@b>"
    assert header_value(raw, "X-Resim-Kind") == "esim_ready"
    assert header_value(raw, "X-Resim-Request") is None
