"""The bench's mail sink reads a stored message's request, kind and one-time code from
the raw bytes (no MIME parsing for the layouts resim writes), and agrees with the full
parser; other layouts go to the parser."""

from __future__ import annotations

import email.parser
import email.policy
from email.message import EmailMessage

import pytest

from resim.adapters.mail.capture import header_value
from resim.adapters.mail.message import wire_message
from resim.bench.delivery import _parsed_code, plain_text, read_delivery
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


def parser_text(raw: bytes) -> str | None:
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain",))
    return None if part is None else str(part.get_content())


@pytest.mark.parametrize("html", [None, "<p>Hei · 654321</p>"])
def test_resim_mails_are_read_without_the_parser_and_say_what_it_says(html: str | None) -> None:
    text = "Hei Kåre,\n\nkoden din:\n\n654321\n\n" + URL + "\n"
    raw = mail(text, html=html)
    assert plain_text(raw) == parser_text(raw) == text


def raw(head: str, body: str, charset: str = "utf-8") -> bytes:
    return (head + "\n" + body).replace("\n", "\r\n").encode(charset)


KIND = "X-Resim-Kind: one_time_code\nX-Resim-Request: r\n"
MULTI = 'Content-Type: multipart/alternative; boundary="b1"\n'
LAYOUTS = {
    "no MIME headers": raw(KIND, "code:\n123456\n"),
    "quoted-printable": raw(
        KIND + "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n",
        "K=C3=A5re=\n 12345=\n6\n123456\n",
    ),
    "html first": raw(
        KIND + MULTI,
        "--b1\nContent-Type: text/html\n\n<p>111111</p>\n"
        "--b1\nContent-Type: text/plain\n\n222222\n--b1--\n",
    ),
    "plain first, folded boundary": raw(
        KIND + 'Content-Type: multipart/alternative;\n boundary="b1"\n',
        "preamble\n--b1\nContent-Type: text/plain\n\n333333\n"
        "--b1\nContent-Type: text/html\n\n<p>444444</p>\n--b1--\n",
    ),
    "boundary-like line in the part": raw(
        KIND + MULTI,
        "--b1\nContent-Type: text/plain\n\n--b1x\n555555\n--b1--\n",
    ),
    "transport padding after the delimiter": raw(
        KIND + MULTI, "--b1  \nContent-Type: text/plain\n\n666666\n--b1--\n"
    ),
    "another charset": raw(
        KIND + "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
        "K\u00e5re\n777777\n",
        "latin-1",
    ),
    "attachment": raw(KIND + "Content-Disposition: attachment; filename=a.txt\n", "888888\n"),
    "mixed": raw(
        KIND + 'Content-Type: multipart/mixed; boundary="b1"\n',
        "--b1\nContent-Type: text/plain\n\n999999\n--b1--\n",
    ),
    "damaged base64": raw(
        KIND + "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n", "MTIzNDU2C\n"
    ),
    "not text": raw(KIND + "Content-Type: application/json\n", '{"otp": "123456"}\n'),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_other_layouts_give_the_parser_s_answer(name: str) -> None:
    message = LAYOUTS[name]
    quick = plain_text(message)
    assert quick is None or quick == parser_text(message)
    assert read_delivery(message, 0.0).code == _parsed_code(message)
