"""MailCapture: real SMTP in, whole files out, readable from another process."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from resim.adapters.mail.capture import MailCapture, read_mailbox, render_mailbox_html
from resim.adapters.mail.smtp import SmtpMailer
from resim.errors import ExternalError
from resim.services.ports import OutgoingMail

pytestmark = pytest.mark.integration

FROZEN = dt.datetime(2025, 3, 12, 14, 5, 30, tzinfo=dt.UTC)


class FrozenClock:
    def now(self) -> dt.datetime:
        return FROZEN


def send(port: int, n: int, **fields: str) -> None:
    mail = OutgoingMail(
        to=fields.get("to", "ana@example.com"),
        subject=fields.get("subject", f"Message {n}"),
        text=fields.get("text", f"Body {n}\n"),
        html=fields.get("html"),
        message_id=fields.get("message_id", f"m{n}@resim.test"),
        language="it",
    )
    SmtpMailer("127.0.0.1", port, sender="x@resim.test", local_hostname="t").send(mail)


class TestMailCapture:
    def test_port_zero_picks_a_free_port(self, tmp_path: Path) -> None:
        with MailCapture(tmp_path) as first, MailCapture(tmp_path / "b") as second:
            assert first.port > 0 and second.port > 0
            assert first.port != second.port

    def test_each_message_is_a_numbered_eml_file_with_the_envelope(self, tmp_path: Path) -> None:
        with MailCapture(tmp_path, clock=FrozenClock()) as capture:
            send(capture.port, 1)
            raw = 'Message-ID: <weird/../id\\*?:"|@x>\r\nSubject: odd\r\n\r\nx\r\n'
            with smtplib.SMTP("127.0.0.1", capture.port, local_hostname="t") as client:
                client.sendmail("a@x.test", ["b@x.test"], raw)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names[0] == "000001-m1@resim.test.eml"
        assert names[1].startswith("000002-weird_.._id")
        assert re.fullmatch(r"[A-Za-z0-9._@+=-]+", names[1])
        first = (tmp_path / names[0]).read_bytes()
        assert first.startswith(b"X-Resim-Envelope-From: x@resim.test\r\n")
        assert b"X-Resim-Envelope-To: ana@example.com\r\n" in first
        [one, _] = read_mailbox(tmp_path)
        assert one.received_at == FROZEN
        assert one.language == "it"
        assert not list(tmp_path.glob(".*")), "no temporary files left behind"

    def test_plain_smtplib_client_with_several_recipients(self, tmp_path: Path) -> None:
        raw = (
            "From: a@x.test\r\nTo: b@x.test\r\nSubject: =?utf-8?q?Bonjour_=C3=A9t=C3=A9?=\r\n"
            "Message-ID: <plain@x.test>\r\n\r\nligne 1\r\nligne 2\r\n"
        )
        with MailCapture(tmp_path) as capture:
            with smtplib.SMTP("127.0.0.1", capture.port, local_hostname="t") as client:
                client.sendmail("a@x.test", ["b@x.test", "c@x.test"], raw)
            [got] = capture.messages()
        assert got.subject == "Bonjour été"
        assert got.recipients == ("b@x.test", "c@x.test")
        assert got.text == "ligne 1\nligne 2\n"
        assert got.html is None
        assert got.message_id == "plain@x.test"

    def test_a_restart_continues_the_numbering_on_the_same_port(self, tmp_path: Path) -> None:
        capture = MailCapture(tmp_path)
        capture.start()
        port = capture.port
        send(port, 1)
        capture.stop()
        capture.start()
        try:
            assert capture.port == port
            send(port, 2)
        finally:
            capture.stop()
        assert [m.seq for m in read_mailbox(tmp_path)] == [1, 2]
        with MailCapture(tmp_path) as fresh:
            send(fresh.port, 3)
        assert [m.message_id for m in read_mailbox(tmp_path)] == [
            "m1@resim.test",
            "m2@resim.test",
            "m3@resim.test",
        ]

    def test_half_written_and_foreign_files_are_ignored(self, tmp_path: Path) -> None:
        with MailCapture(tmp_path) as capture:
            send(capture.port, 1)
        (tmp_path / ".000002-m2@resim.test.eml.part").write_bytes(b"Subject: half")
        (tmp_path / "notes.txt").write_text("not mail")
        assert [m.seq for m in read_mailbox(tmp_path)] == [1]

    def test_a_storage_failure_asks_the_sender_to_retry(self, tmp_path: Path) -> None:
        class FullDisk(MailCapture):
            def store(self, mail_from: str, recipients: list[str], content: bytes) -> Path:
                raise OSError(28, "No space left on device")

        with FullDisk(tmp_path) as capture, pytest.raises(ExternalError) as info:
            send(capture.port, 1)
        assert info.value.retryable is True
        assert "451" in info.value.message

    def test_message_bodies_stay_out_of_debug_logs(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="mail.log")  # resim quiets it by default
        with MailCapture(tmp_path) as capture:
            send(capture.port, 1, text="Your code is 731942\n")
        assert "354 End data" in caplog.text  # aiosmtpd did log the conversation
        assert "731942" not in caplog.text

    def test_a_missing_directory_is_an_empty_mailbox(self, tmp_path: Path) -> None:
        assert read_mailbox(tmp_path / "nope") == []

    def test_another_process_reads_the_mailbox(self, tmp_path: Path) -> None:
        with MailCapture(tmp_path) as capture:
            send(capture.port, 1, subject="Ciao Giulia", text="Il tuo codice\n")
            script = (
                "import json,sys\n"
                "from resim.adapters.mail.capture import read_mailbox\n"
                "print(json.dumps([[m.subject, m.text, m.message_id] "
                "for m in read_mailbox(sys.argv[1])]))\n"
            )
            out = subprocess.run(
                [sys.executable, "-c", script, str(tmp_path)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        assert json.loads(out) == [["Ciao Giulia", "Il tuo codice\n", "m1@resim.test"]]


class TestMailboxPage:
    def test_lists_messages_newest_first_and_escapes_everything(self, tmp_path: Path) -> None:
        hostile = "<script>alert(1)</script>"
        with MailCapture(tmp_path) as capture:
            send(capture.port, 1, subject="First")
            send(
                capture.port,
                2,
                subject=f"Second {hostile}",
                text=f"Body {hostile} & more",
                html=f'<p onclick="x()">Hi</p>{hostile}',
            )
        page = render_mailbox_html(read_mailbox(tmp_path), title="Mail <demo>")
        assert page.startswith("<!DOCTYPE html>")
        assert "<script>" not in page
        assert "Second &lt;script&gt;" in page
        assert "Body &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
        assert "<title>Mail &lt;demo&gt;</title>" in page
        assert page.index("Second") < page.index("First")
        assert 'sandbox=""' in page and "srcdoc=" in page
        assert 'data-message-id="m2@resim.test"' in page

    def test_an_empty_mailbox_says_so(self) -> None:
        assert "No mail yet" in render_mailbox_html([])
