"""wire_message's lean builder writes what ``email.mime`` under ``compat32`` writes.

The reference below is the builder resim used before (``MIMEText`` /
``MIMEMultipart``, ``compat32`` generator with CRLF). For ASCII addresses the
lean builder must produce the same bytes, except the random multipart
boundary; the bytes must also parse back, with the standard library's parser,
into the mail that went in.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import re
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import pytest

from resim.adapters.mail.message import wire_message
from resim.adapters.mail.templates import render_mail
from resim.locale import LANGUAGES
from resim.services.ports import OutgoingMail

NOW = dt.datetime(2025, 3, 12, 14, 5, tzinfo=dt.UTC)
_WIRE = email.policy.compat32.clone(linesep="\r\n")
_BOUNDARY = re.compile(rb"={15}\d{19}==")


def reference(mail: OutgoingMail, *, sender: str) -> bytes:
    """The old ``_compat_message(...).as_bytes(policy=compat32 + CRLF)``."""

    def text_header(msg: Message, name: str, value: str) -> None:
        msg[name] = value if value.isascii() else Header(value, "utf-8", header_name=name)  # type: ignore[assignment]

    message_id = mail.message_id.strip()
    if not (message_id.startswith("<") and message_id.endswith(">")):
        message_id = f"<{message_id}>"
    text = MIMEText(mail.text, "plain", "utf-8")
    msg: Message
    if mail.html is None:
        msg = text
    else:
        msg = MIMEMultipart("alternative")
        html = MIMEText(mail.html, "html", "utf-8")
        for part in (text, html):
            del part["MIME-Version"]
            msg.attach(part)
    name = mail.sender_name
    if name and any(ord(c) < 32 or ord(c) == 127 for c in name):
        name = None
    address = email.utils.parseaddr(sender)[1]
    if name and address:
        msg["From"] = email.utils.formataddr((name, address), charset="utf-8")
    else:
        msg["From"] = sender
    msg["To"] = mail.to
    text_header(msg, "Subject", mail.subject)
    msg["Date"] = email.utils.format_datetime(NOW)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = mail.language.replace("_", "-")
    if not any(n.lower() == "auto-submitted" for n in mail.headers):
        msg["Auto-Submitted"] = "auto-generated"
    for n, value in mail.headers.items():
        text_header(msg, n, value)
    return msg.as_bytes(policy=_WIRE)


def same_bytes(mail: OutgoingMail, *, sender: str) -> bytes:
    got = wire_message(mail, sender=sender, now=NOW).data
    assert _BOUNDARY.sub(b"B", got) == _BOUNDARY.sub(b"B", reference(mail, sender=sender))
    return got


def outgoing(**overrides: Any) -> OutgoingMail:
    values: dict[str, Any] = {
        "to": "kari@example.com",
        "subject": "Ny SIM bestilt · var det deg?",
        "text": "Hei Kari,\nnoen har bedt om nytt SIM-kort.\n",
        "html": "<p>Hei <b>Kari</b> · 你好</p>\n",
        "message_id": "req-42.requested@resim.test",
        "language": "nb",
        "headers": {"X-Resim-Kind": "replacement_requested", "X-Resim-Request": "REQ42"},
        "sender_name": "Nordlys Mobil",
    }
    values.update(overrides)
    return OutgoingMail(**values)


SENDERS = [
    "Nordlys Mobil <no-reply@nordlys.test>",
    "no-reply@resim.test",
    '"Q, x" <a@b.test>',
    "not an address",
]
NAMES = [None, "Nordlys Mobil", "Fjordnett Ø", 'Evil "quoted" (c) <x>', "A" * 80, "Å" * 50, "a\tb"]
SUBJECTS = [
    "Your code",
    "",
    " leading",
    "trailing ",
    "two  spaces\tand a tab",
    "x" * 62,  # "Subject: " + 62 = 71 characters: one line
    "x" * 70,  # 79: folded
    "word " * 30,
    "Å" * 200,
    "Ny SIM bestilt · var det deg?",
    "=?utf-8?q?looks_encoded?=",
    "bell\x07",
]
TEXTS = ["", "no newline", "From me\n.\n..\n", "Å line\n" * 50, "x" * 2000 + "\n", "a\r\nb\n"]


class TestSameBytesAsTheEmailPackage:
    @pytest.mark.parametrize("sender", SENDERS)
    @pytest.mark.parametrize("name", NAMES)
    def test_senders_and_brand_names(self, sender: str, name: str | None) -> None:
        same_bytes(outgoing(sender_name=name), sender=sender)

    @pytest.mark.parametrize("subject", SUBJECTS)
    @pytest.mark.parametrize("html", [None, "<p>x</p>"])
    def test_subjects(self, subject: str, html: str | None) -> None:
        same_bytes(outgoing(subject=subject, html=html), sender=SENDERS[0])

    @pytest.mark.parametrize("text", TEXTS)
    @pytest.mark.parametrize("html", [None, "", "<p>Å</p>"])
    def test_bodies(self, text: str, html: str | None) -> None:
        same_bytes(outgoing(text=text, html=html), sender=SENDERS[0])

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"X-Resim-Request": ""},
            {"Auto-Submitted": "auto-replied", "X-Brand": "Fjordnett Ø " * 10},
            {"X-Long": "v" * 90, "X-Trailing": "v ", "X-Spaces": "   "},
        ],
    )
    def test_extra_headers(self, headers: dict[str, str]) -> None:
        same_bytes(outgoing(headers=headers), sender=SENDERS[0])

    @pytest.mark.parametrize("language", [*LANGUAGES, "zh_Hans"])
    @pytest.mark.parametrize("message_id", ["j1@resim", "<j1@resim>"])
    def test_every_language_and_both_message_id_forms(self, language: str, message_id: str) -> None:
        same_bytes(outgoing(language=language, message_id=message_id), sender=SENDERS[0])

    @pytest.mark.parametrize("language", LANGUAGES)
    def test_rendered_customer_mail(self, language: str) -> None:
        context = {
            "customer_name": "Åse Øvrebø",
            "brand_name": "Fjordnett",
            "msisdn_masked": "+47 *** ** 123",
            "request_ref": "AB12CD34",
            "reason": "stolen",
            "not_me_url": "https://resim.test/not-me/tok3n",
            "continue_url": "https://resim.test/continue/req-1.t.mac",
            "expires_at": NOW,
        }
        for kind in ("replacement_requested", "esim_ready"):
            r = render_mail(kind, language=language, context=context)
            mail = outgoing(subject=r.subject, text=r.text, html=r.html, language=r.language)
            same_bytes(mail, sender=SENDERS[0])


class TestParsedBack:
    def test_the_stdlib_parser_reads_back_every_header_and_part(self) -> None:
        mail = outgoing(subject="Å" * 100, sender_name="Fjordnett Ø", text="Å line\n" * 50)
        raw = wire_message(mail, sender=SENDERS[0], now=NOW).data
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        assert msg["Subject"] == "Å" * 100
        assert msg["From"] == "Fjordnett Ø <no-reply@nordlys.test>"
        assert msg["To"] == "kari@example.com"
        assert msg["Message-ID"] == "<req-42.requested@resim.test>"
        assert msg["X-Resim-Request"] == "REQ42"
        assert msg["MIME-Version"] == "1.0"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        parts = list(msg.iter_parts())
        assert all(isinstance(p, EmailMessage) for p in parts)
        assert parts[0].get_content() == mail.text  # type: ignore[attr-defined]
        assert parts[1].get_content() == mail.html  # type: ignore[attr-defined]
        assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
        assert not msg.defects and not any(p.defects for p in parts)

    def test_each_multipart_mail_gets_its_own_boundary(self) -> None:
        first, second = (wire_message(outgoing(), sender=SENDERS[0]).data for _ in range(2))
        assert _BOUNDARY.findall(first)[0] != _BOUNDARY.findall(second)[0]
