"""AsyncSmtpMailer (aiosmtplib) against the MailCapture SMTP server on loopback.

The same delivery and error classification as SmtpMailer, plus what it is for:
many mails on few, reused connections, and a stale connection replaced.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resim.adapters.mail.capture import MailCapture
from resim.adapters.mail.fake import FakeAsyncMailer, FakeMailer
from resim.adapters.mail.smtp import SmtpMailer
from resim.adapters.mail.smtp_async import AsyncSmtpMailer
from resim.errors import ExternalError
from resim.services.ports import OutgoingMail

pytestmark = pytest.mark.integration

SENDER = "Nordlys <no-reply@nordlys.test>"
OTP = "481516"


def outgoing(to: str = "kari@example.com", n: int = 1) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject=f"Din kode · {n}",
        text=f"Hei Kari,\nkoden din er {OTP}.\n",
        message_id=f"req-{n}.otp@resim.test",
        language="nb",
    )


def async_mailer(port: int, **options: Any) -> AsyncSmtpMailer:
    twin = SmtpMailer(
        "127.0.0.1", port, sender=SENDER, local_hostname="test.local", timeout=5.0
    ).asynchronous()
    for name, value in options.items():
        setattr(twin, name, value)
    return twin


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[MailCapture]:
    refuse = {
        "gone@example.com": "550 5.1.1 <gone@example.com> unknown user",
        "busy@example.com": "450 4.2.1 Mailbox busy",
    }
    with MailCapture(tmp_path / "mail", refuse=refuse) as cap:
        yield cap


class TestDelivery:
    def test_many_concurrent_mails_arrive_over_few_reused_connections(
        self, capture: MailCapture
    ) -> None:
        async def go() -> int:
            m = async_mailer(capture.port)
            try:
                await asyncio.gather(*(m.send(outgoing(n=i)) for i in range(40)))
                await asyncio.gather(*(m.send(outgoing(n=100 + i)) for i in range(10)))
                return m.connections_opened
            finally:
                await m.aclose()

        opened = asyncio.run(go())
        got = capture.messages()
        assert len(got) == 50 and len({x.message_id for x in got}) == 50
        assert opened <= 8  # max_connections, reused by the later sends
        assert got[0].text == f"Hei Kari,\nkoden din er {OTP}.\n"

    def test_a_connection_the_server_closed_is_replaced(self, capture: MailCapture) -> None:
        async def go() -> None:
            m = async_mailer(capture.port)
            try:
                await m.send(outgoing(n=1))
                for client, _since in m._idle:  # the server hangs up on the idle session
                    client.close()
                await m.send(outgoing(n=2))
            finally:
                await m.aclose()

        asyncio.run(go())
        assert [x.message_id for x in capture.messages()] == [
            "req-1.otp@resim.test",
            "req-2.otp@resim.test",
        ]

    def test_a_branded_two_part_mail_arrives_as_built_and_parses_back(
        self, capture: MailCapture
    ) -> None:
        mail = OutgoingMail(
            to="kari@example.com",
            subject="Ny SIM bestilt · var det deg? " + "Å" * 40,
            text="Hei Kåre,\n" + "noen har bedt om nytt SIM-kort.\n" * 20,
            html="<p>Hei <b>Kåre</b> · 你好</p>\n" * 20,
            message_id="req-7.requested@resim.test",
            language="nb",
            headers={"X-Resim-Kind": "replacement_requested", "X-Resim-Request": "req-7"},
            sender_name="Fjordnett Ø",
        )

        async def go() -> None:
            m = async_mailer(capture.port)
            try:
                await m.send(mail)
            finally:
                await m.aclose()

        asyncio.run(go())
        [got] = capture.messages()
        assert (got.subject, got.text, got.html) == (mail.subject, mail.text, mail.html)
        assert (got.language, got.kind, got.recipients) == (
            "nb",
            "replacement_requested",
            ("kari@example.com",),
        )
        parsed = email.message_from_bytes(got.path.read_bytes(), policy=email.policy.default)
        assert parsed["From"] == "Fjordnett Ø <no-reply@nordlys.test>"
        assert parsed["X-Resim-Request"] == "req-7" and not parsed.defects


class TestErrorClassification:
    @pytest.mark.parametrize(
        ("to", "retryable", "code", "shown"),
        [
            ("gone@example.com", False, "SMTP_REJECTED", "550 5.1.1"),
            ("busy@example.com", True, "SMTP_UNAVAILABLE", "450 4.2.1"),
        ],
    )
    def test_a_refused_recipient_is_classified_by_its_reply(
        self, capture: MailCapture, to: str, retryable: bool, code: str, shown: str
    ) -> None:
        async def go() -> ExternalError:
            m = async_mailer(capture.port)
            try:
                with pytest.raises(ExternalError) as info:
                    await m.send(outgoing(to=to))
                await m.send(outgoing(n=9))  # the next mail still goes out
                return info.value
            finally:
                await m.aclose()

        error = asyncio.run(go())
        assert (error.retryable, error.code) == (retryable, code)
        assert shown in error.message
        assert to not in error.message and OTP not in error.message
        assert error.__cause__ is None
        assert [x.message_id for x in capture.messages()] == ["req-9.otp@resim.test"]

    def test_no_server_is_retryable(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])

        async def go() -> ExternalError:
            m = async_mailer(port)
            with pytest.raises(ExternalError) as info:
                await m.send(outgoing())
            await m.aclose()
            return info.value

        error = asyncio.run(go())
        assert error.retryable is True and error.code == "SMTP_UNAVAILABLE"


def test_the_async_fake_keeps_what_it_accepts_in_its_sync_fake() -> None:
    inner = FakeMailer()
    fake = FakeAsyncMailer(inner)
    asyncio.run(fake.send(outgoing(n=4)))
    assert (
        [m.message_id for m in inner.sent]
        == ["req-4.otp@resim.test"]
        == [m.message_id for m in fake.sent]
    )


class TestInternationalisedAddresses:
    """RFC 6531: a non-ASCII recipient goes out with SMTPUTF8 (raw UTF-8 headers)."""

    def test_both_mailers_deliver_to_a_utf8_mailbox(self) -> None:
        from aiosmtpd.controller import Controller

        received: list[tuple[list[str], bytes, list[str]]] = []

        class Keep:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                received.append(
                    (envelope.rcpt_tos, envelope.original_content, envelope.mail_options)
                )
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = Controller(Keep(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
        server.start()
        try:
            to = "søren@eksempel.dk"
            SmtpMailer("127.0.0.1", port, sender=SENDER, local_hostname="t.local").send(
                outgoing(to=to, n=1)
            )

            async def go() -> None:
                m = async_mailer(port)
                try:
                    await m.send(outgoing(to=to, n=2))
                finally:
                    await m.aclose()

            asyncio.run(go())
        finally:
            server.stop()
        assert [r[0] for r in received] == [[to], [to]]
        assert all(f"To: {to}".encode() in data for _, data, _ in received)
        assert all("SMTPUTF8" in options for _, _, options in received)
