"""wire_message: the bytes both SMTP mailers send, without any network."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest
from pydantic import SecretStr

from resim.adapters.mail.message import WireMessage, wire_message
from resim.adapters.mail.smtp import SmtpMailer
from resim.errors import InvalidInput
from resim.services.ports import OutgoingMail

SENDER = "Nordlys Mobil <no-reply@nordlys.test>"
NOW = dt.datetime(2025, 3, 12, 14, 5, tzinfo=dt.UTC)


def outgoing(**overrides: object) -> OutgoingMail:
    values: dict[str, object] = {
        "to": "kari@example.com",
        "subject": "Ny SIM bestilt · var det deg?",
        "text": "Hei Kari,\nnoen har bedt om nytt SIM-kort.\n",
        "message_id": "req-42.requested@resim.test",
        "language": "nb",
    }
    values.update(overrides)
    return OutgoingMail(**values)  # type: ignore[arg-type]


def round_trip(wire: WireMessage) -> EmailMessage:
    assert b"\r\n" in wire.data and b"\n" not in wire.data.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(wire.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


class TestHeaders:
    def test_message_id_is_wrapped_in_angle_brackets(self) -> None:
        msg = round_trip(wire_message(outgoing(), sender=SENDER, now=NOW))
        assert msg["Message-ID"] == "<req-42.requested@resim.test>"

    def test_message_id_already_in_brackets_is_kept_as_given(self) -> None:
        msg = round_trip(wire_message(outgoing(message_id="<a.b@c>"), sender=SENDER, now=NOW))
        assert msg["Message-ID"] == "<a.b@c>"

    @pytest.mark.parametrize("bad", ["", "a b@c", "a<b@c", "a>b@c", "a\r\nBcc: x@y"])
    def test_malformed_message_ids_are_refused(self, bad: str) -> None:
        with pytest.raises(InvalidInput):
            wire_message(outgoing(message_id=bad), sender=SENDER, now=NOW)

    def test_from_to_subject_date_and_language(self) -> None:
        msg = round_trip(wire_message(outgoing(language="zh_Hans"), sender=SENDER, now=NOW))
        assert msg["From"] == SENDER
        assert msg["To"] == "kari@example.com"
        assert msg["Subject"] == "Ny SIM bestilt · var det deg?"
        assert msg["Date"] == "Wed, 12 Mar 2025 14:05:00 +0000"
        assert msg["Content-Language"] == "zh-Hans"
        assert msg["Auto-Submitted"] == "auto-generated"

    def test_date_is_written_in_utc_whatever_the_clock_zone(self) -> None:
        oslo = dt.timezone(dt.timedelta(hours=1))
        msg = round_trip(wire_message(outgoing(), sender=SENDER, now=NOW.astimezone(oslo)))
        assert msg["Date"].endswith("14:05:00 +0000")

    def test_extra_headers_are_added(self) -> None:
        mail = outgoing(headers={"X-Resim-Request": "REQ42", "Auto-Submitted": "auto-replied"})
        msg = round_trip(wire_message(mail, sender=SENDER, now=NOW))
        assert msg["X-Resim-Request"] == "REQ42"
        assert msg.get_all("Auto-Submitted") == ["auto-replied"]

    @pytest.mark.parametrize("name", ["From", "bcc", "Message-ID", "Content-Type", "Bad Name:"])
    def test_extra_headers_cannot_replace_built_ones(self, name: str) -> None:
        with pytest.raises(InvalidInput):
            wire_message(outgoing(headers={name: "x@evil.test"}), sender=SENDER, now=NOW)

    @pytest.mark.parametrize(
        "field", [{"subject": "Hi\r\nBcc: evil@x.test"}, {"headers": {"X-A": "1\nBcc: evil@x"}}]
    )
    def test_line_breaks_in_header_values_are_refused(self, field: dict[str, object]) -> None:
        with pytest.raises(InvalidInput, match="line break"):
            wire_message(outgoing(**field), sender=SENDER, now=NOW)

    @pytest.mark.parametrize("to", ["", "nobody", "a@x.test, b@x.test"])
    def test_exactly_one_recipient(self, to: str) -> None:
        with pytest.raises(InvalidInput):
            wire_message(outgoing(to=to), sender=SENDER, now=NOW)


class TestBody:
    def test_text_only_is_a_single_utf8_text_part(self) -> None:
        msg = round_trip(wire_message(outgoing(), sender=SENDER, now=NOW))
        assert msg.get_content_type() == "text/plain"
        assert msg.get_content_charset() == "utf-8"
        assert msg.get_content() == "Hei Kari,\nnoen har bedt om nytt SIM-kort.\n"

    def test_html_becomes_an_alternative_after_the_text(self) -> None:
        mail = outgoing(html="<p>Hei <b>Kari</b> · 你好</p>")
        msg = round_trip(wire_message(mail, sender=SENDER, now=NOW))
        assert msg.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in msg.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        html_part = msg.get_body(preferencelist=("html",))
        assert html_part is not None
        assert "你好" in html_part.get_content()
        assert msg["Content-Language"] == "nb"  # survives the multipart conversion


class TestMailerConfiguration:
    def test_tls_modes_are_exclusive(self) -> None:
        with pytest.raises(InvalidInput):
            SmtpMailer("mail.test", 465, sender=SENDER, use_ssl=True, use_starttls=True)

    def test_username_needs_a_password(self) -> None:
        with pytest.raises(InvalidInput):
            SmtpMailer("mail.test", 587, sender=SENDER, username="resim")

    def test_repr_never_shows_the_password(self) -> None:
        mailer = SmtpMailer(
            "mail.test", 587, sender=SENDER, username="resim", password=SecretStr("hunter2hunter2")
        )
        assert "hunter2" not in repr(mailer)
        assert "hunter2" not in str(vars(mailer))


class TestWire:
    def test_envelope_is_the_bare_addresses(self) -> None:
        wire = wire_message(outgoing(), sender=SENDER, now=NOW)
        assert (wire.envelope_from, wire.to, wire.mail_options) == (
            "no-reply@nordlys.test",
            "kari@example.com",
            [],
        )

    def test_ascii_mail_has_no_raw_utf8_and_one_mime_version(self) -> None:
        wire = wire_message(outgoing(html="<p>你好 Kåre</p>"), sender=SENDER, now=NOW)
        assert wire.data.isascii()
        assert wire.data.count(b"MIME-Version:") == 1

    def test_a_non_ascii_extra_header_is_an_encoded_word(self) -> None:
        wire = wire_message(outgoing(headers={"X-Brand": "Fjordnett Ø"}), sender=SENDER, now=NOW)
        assert wire.data.isascii() and round_trip(wire)["X-Brand"] == "Fjordnett Ø"

    def test_an_internationalised_recipient_asks_for_smtputf8(self) -> None:
        wire = wire_message(outgoing(to="søren@eksempel.dk"), sender=SENDER, now=NOW)
        assert "SMTPUTF8" in wire.mail_options and wire.to == "søren@eksempel.dk"
        assert "To: søren@eksempel.dk".encode() in wire.data  # raw UTF-8 (RFC 6532)
        assert round_trip(wire)["Subject"] == "Ny SIM bestilt · var det deg?"
