"""build_message: the MIME message SmtpMailer sends, without any network."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pytest
from pydantic import SecretStr

from resim.adapters.mail.smtp import SmtpMailer, build_message
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


def round_trip(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


class TestHeaders:
    def test_message_id_is_wrapped_in_angle_brackets(self) -> None:
        msg = round_trip(build_message(outgoing(), sender=SENDER, now=NOW))
        assert msg["Message-ID"] == "<req-42.requested@resim.test>"

    def test_message_id_already_in_brackets_is_kept_as_given(self) -> None:
        msg = build_message(outgoing(message_id="<a.b@c>"), sender=SENDER, now=NOW)
        assert msg["Message-ID"] == "<a.b@c>"

    @pytest.mark.parametrize("bad", ["", "a b@c", "a<b@c", "a>b@c", "a\r\nBcc: x@y"])
    def test_malformed_message_ids_are_refused(self, bad: str) -> None:
        with pytest.raises(InvalidInput):
            build_message(outgoing(message_id=bad), sender=SENDER, now=NOW)

    def test_from_to_subject_date_and_language(self) -> None:
        msg = round_trip(build_message(outgoing(language="zh_Hans"), sender=SENDER, now=NOW))
        assert msg["From"] == SENDER
        assert msg["To"] == "kari@example.com"
        assert msg["Subject"] == "Ny SIM bestilt · var det deg?"
        assert msg["Date"] == "Wed, 12 Mar 2025 14:05:00 +0000"
        assert msg["Content-Language"] == "zh-Hans"
        assert msg["Auto-Submitted"] == "auto-generated"

    def test_date_is_written_in_utc_whatever_the_clock_zone(self) -> None:
        oslo = dt.timezone(dt.timedelta(hours=1))
        msg = build_message(outgoing(), sender=SENDER, now=NOW.astimezone(oslo))
        assert msg["Date"].endswith("14:05:00 +0000")

    def test_extra_headers_are_added(self) -> None:
        mail = outgoing(headers={"X-Resim-Request": "REQ42", "Auto-Submitted": "auto-replied"})
        msg = round_trip(build_message(mail, sender=SENDER, now=NOW))
        assert msg["X-Resim-Request"] == "REQ42"
        assert msg.get_all("Auto-Submitted") == ["auto-replied"]

    @pytest.mark.parametrize("name", ["From", "bcc", "Message-ID", "Content-Type", "Bad Name:"])
    def test_extra_headers_cannot_replace_built_ones(self, name: str) -> None:
        with pytest.raises(InvalidInput):
            build_message(outgoing(headers={name: "x@evil.test"}), sender=SENDER, now=NOW)

    @pytest.mark.parametrize(
        "field", [{"subject": "Hi\r\nBcc: evil@x.test"}, {"headers": {"X-A": "1\nBcc: evil@x"}}]
    )
    def test_line_breaks_in_header_values_are_refused(self, field: dict[str, object]) -> None:
        with pytest.raises(InvalidInput, match="line break"):
            build_message(outgoing(**field), sender=SENDER, now=NOW)

    @pytest.mark.parametrize("to", ["", "nobody", "a@x.test, b@x.test"])
    def test_exactly_one_recipient(self, to: str) -> None:
        with pytest.raises(InvalidInput):
            build_message(outgoing(to=to), sender=SENDER, now=NOW)


class TestBody:
    def test_text_only_is_a_single_utf8_text_part(self) -> None:
        msg = round_trip(build_message(outgoing(), sender=SENDER, now=NOW))
        assert msg.get_content_type() == "text/plain"
        assert msg.get_content_charset() == "utf-8"
        assert msg.get_content() == "Hei Kari,\nnoen har bedt om nytt SIM-kort.\n"

    def test_html_becomes_an_alternative_after_the_text(self) -> None:
        mail = outgoing(html="<p>Hei <b>Kari</b> · 你好</p>")
        msg = round_trip(build_message(mail, sender=SENDER, now=NOW))
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
