"""FakeMailer: records what it is given, fails on request, and is thread-safe."""

from __future__ import annotations

import threading

import pytest

from resim.adapters.mail.fake import FakeMailer
from resim.errors import ExternalError
from resim.services.ports import OutgoingMail


def outgoing(to: str = "ana@example.com", n: int = 0) -> OutgoingMail:
    return OutgoingMail(to=to, subject=f"s{n}", text=f"t{n}", message_id=f"m{n}@resim.test")


class TestFakeMailer:
    def test_records_mails_in_order(self) -> None:
        mailer = FakeMailer()
        mailer.send(outgoing(n=1))
        mailer.send(outgoing(to="bo@example.com", n=2))
        assert [m.message_id for m in mailer.sent] == ["m1@resim.test", "m2@resim.test"]

    def test_finds_the_latest_mail_to_an_address_ignoring_case(self) -> None:
        mailer = FakeMailer()
        mailer.send(outgoing(n=1))
        mailer.send(outgoing(to="bo@example.com", n=2))
        mailer.send(outgoing(n=3))
        latest = mailer.latest_to("Ana@Example.com")
        assert latest is not None and latest.message_id == "m3@resim.test"
        assert [m.subject for m in mailer.to("ana@example.com")] == ["s1", "s3"]
        assert mailer.latest_to("nobody@example.com") is None

    def test_sent_is_a_copy(self) -> None:
        mailer = FakeMailer()
        mailer.send(outgoing())
        mailer.sent.clear()
        assert len(mailer.sent) == 1

    def test_fails_the_next_sends_when_told_then_recovers(self) -> None:
        mailer = FakeMailer()
        error = ExternalError("down", retryable=True, code="SMTP_UNAVAILABLE")
        mailer.fail_next(error, times=2)
        for _ in range(2):
            with pytest.raises(ExternalError) as info:
                mailer.send(outgoing())
            assert info.value.retryable
        mailer.send(outgoing())
        assert mailer.attempts == 3
        assert len(mailer.sent) == 1

    def test_clear_forgets_everything(self) -> None:
        mailer = FakeMailer()
        mailer.send(outgoing())
        mailer.fail_next(ExternalError("x", retryable=False))
        mailer.clear()
        mailer.send(outgoing())
        assert len(mailer.sent) == 1 and mailer.attempts == 1

    def test_concurrent_sends_are_all_recorded(self) -> None:
        mailer = FakeMailer()

        def worker(k: int) -> None:
            for i in range(200):
                mailer.send(outgoing(to=f"u{k}@example.com", n=i))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(mailer.sent) == 1600
        assert mailer.attempts == 1600
        assert len(mailer.to("u3@example.com")) == 200
