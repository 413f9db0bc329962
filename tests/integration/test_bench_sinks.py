"""The bench's lean sinks store what MailCapture and SmsCapture store, over real SMTP and
HTTP from resim's own clients, and the driver's lean HTTP client reads their answers."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from resim.adapters.mail.capture import read_mailbox
from resim.adapters.mail.smtp import SmtpMailer
from resim.adapters.sms.capture import read_outbox
from resim.adapters.sms.http import HttpSmsGateway
from resim.bench.delivery import Delivered
from resim.bench.sinks import MailSink, SmsSink
from resim.emulator.leanhttp import HttpError, LeanClient
from resim.errors import ExternalError
from resim.services.ports import OutgoingMail, OutgoingSms

pytestmark = pytest.mark.integration


def test_mail_sink_stores_messages_and_reports_them(tmp_path: Path) -> None:
    seen: list[Delivered] = []
    sink = MailSink(tmp_path / "mail", seen.append)
    sink.start()
    try:
        mail = OutgoingMail(
            to="ana@example.com",
            subject="Your code",
            text="Hello\n.starts with a dot\n\n123456\n",
            message_id="r1.code@resim.test",
            language="en",
            headers={"X-Resim-Kind": "one_time_code", "X-Resim-Request": "r1"},
        )
        SmtpMailer("127.0.0.1", sink.port, sender="x@resim.test", local_hostname="t").send(mail)
        with smtplib.SMTP("127.0.0.1", sink.port, local_hostname="t") as client:
            assert client.noop()[0] == 250
            code, _ = client.docmd("RCPT TO:<b@x.test>")
            assert code == 503  # no MAIL yet
            for n in (2, 3):  # two messages on one connection
                raw = f"Message-ID: <m{n}@x>\r\nX-Resim-Kind: esim_ready\r\n\r\n..dot\r\n"
                client.sendmail("a@x.test", ["b@x.test", "c@x.test"], raw)
    finally:
        sink.stop()
    stored = read_mailbox(tmp_path / "mail")
    assert [m.seq for m in stored] == [1, 2, 3]
    assert stored[0].path.name == "000001-r1.code@resim.test.eml"
    assert ".starts with a dot" in stored[0].text
    assert stored[1].recipients == ("b@x.test", "c@x.test")
    assert stored[1].text == "..dot\n"  # smtplib stuffed it to "...dot", the sink unstuffed
    assert [(d.request_id, d.kind, d.code) for d in seen] == [
        ("r1", "one_time_code", "123456"),
        ("", "esim_ready", None),
        ("", "esim_ready", None),
    ]


def test_sms_sink_answers_as_the_capture_does(tmp_path: Path) -> None:
    sink = SmsSink(tmp_path / "sms").start()
    gateway = HttpSmsGateway(sink.url, sender="Bench")
    try:
        message = OutgoingSms(id="job-1", to="+4520000001", text="Hej")
        gateway.send(message)
        gateway.send(message)  # the same id: accepted, stored once
        gateway.send(OutgoingSms(id="job-2", to="+4520000002", text="Igen"))

        async def raw_calls() -> list[int]:
            async with LeanClient(f"http://127.0.0.1:{sink.port}") as client:
                bad = await client.post("/messages", json={"id": "x"})
                wrong = await client.post("/elsewhere", json={})
                return [bad.status_code, wrong.status_code]

        assert asyncio.run(raw_calls()) == [400, 404]
    finally:
        gateway.close()
        sink.stop()
    assert [(m.id, m.to, m.text) for m in read_outbox(tmp_path / "sms")] == [
        ("job-1", "+4520000001", "Hej"),
        ("job-2", "+4520000002", "Igen"),
    ]
    assert sink.stored == 2


def test_a_refusing_sms_sink_is_a_retryable_error(tmp_path: Path) -> None:
    sink = SmsSink(tmp_path)
    sink._refuse = {"+4520000503": 503}
    sink.start()
    gateway = HttpSmsGateway(sink.url, sender="Bench")
    try:
        with pytest.raises(ExternalError) as caught:
            gateway.send(OutgoingSms(id="job-9", to="+4520000503", text="Hej"))
        assert caught.value.retryable
    finally:
        gateway.close()
        sink.stop()


def test_the_lean_client_fails_with_its_own_error(tmp_path: Path) -> None:
    async def call() -> None:
        async with LeanClient("http://127.0.0.1:9", timeout_s=5) as client:
            await client.get("/")

    with pytest.raises(HttpError):
        asyncio.run(call())
