"""The SmsGateway contract: FakeSmsGateway and HttpSmsGateway pass the same cases.

The HTTP adapter talks real HTTP on loopback to the SmsCapture server (the
demo's gateway), which keeps what it accepts as files.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from async_bridge import Blocking
from pydantic import SecretStr

from resim.adapters.sms.capture import SmsCapture, read_outbox, render_outbox_html
from resim.adapters.sms.fake import FakeAsyncSmsGateway, FakeSmsGateway
from resim.adapters.sms.http import HttpSmsGateway
from resim.errors import ExternalError, InvalidInput
from resim.services.ports import OutgoingSms, SmsGateway

pytestmark = pytest.mark.integration

TEXT = "Nordlys: A new SIM was requested. Not you? https://resim.test/not-me/s3cr3t-l1nk"
REFUSE = {"+4520000400": 400, "+4520000503": 503, "+4520000429": 429}


@dataclass
class Rig:
    gateway: SmsGateway
    delivered: Callable[[], list[tuple[str, str, str]]]  # (id, to, text), oldest first


@pytest.fixture(params=["fake", "http", "fake-async", "http-async"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param.startswith("fake"):
        fake = FakeSmsGateway(refuse=REFUSE)
        if request.param == "fake-async":
            bridge = Blocking(FakeAsyncSmsGateway(fake))
            yield Rig(bridge, lambda: [(m.id, m.to, m.text) for m in fake.sent])  # type: ignore[arg-type]
            bridge.close()
            return
        yield Rig(fake, lambda: [(m.id, m.to, m.text) for m in fake.sent])
        return
    capture = SmsCapture(tmp_path / "sms", token="gw-t0ken", refuse=REFUSE).start()
    gateway = HttpSmsGateway(capture.url, token=SecretStr("gw-t0ken"), sender="Nordlys")
    twin = gateway.asynchronous() if request.param == "http-async" else None
    bridge = Blocking(twin) if twin is not None else None
    try:
        yield Rig(
            bridge or gateway,  # type: ignore[arg-type]
            lambda: [(m.id, m.to, m.text) for m in capture.messages()],
        )
    finally:
        if bridge is not None:
            bridge.close()
        gateway.close()
        capture.stop()


class TestEveryGateway:
    def test_a_message_is_delivered_as_given(self, rig: Rig) -> None:
        rig.gateway.send(OutgoingSms(id="job-1", to="+4520000001", text=TEXT))
        assert rig.delivered() == [("job-1", "+4520000001", TEXT)]

    def test_the_same_id_again_is_accepted_but_delivered_once(self, rig: Rig) -> None:
        message = OutgoingSms(id="job-2", to="+4520000001", text=TEXT)
        rig.gateway.send(message)
        rig.gateway.send(message)  # a retry after a crash
        rig.gateway.send(OutgoingSms(id="job-3", to="+4520000001", text="Other"))
        assert [d[0] for d in rig.delivered()] == ["job-2", "job-3"]

    @pytest.mark.parametrize(
        ("number", "retryable"),
        [("+4520000400", False), ("+4520000503", True), ("+4520000429", True)],
    )
    def test_refusals_are_classified_and_name_neither_number_nor_text(
        self, rig: Rig, number: str, retryable: bool
    ) -> None:
        with pytest.raises(ExternalError) as caught:
            rig.gateway.send(OutgoingSms(id="job-4", to=number, text=TEXT))
        assert caught.value.retryable is retryable
        assert caught.value.code == ("SMS_UNAVAILABLE" if retryable else "SMS_REJECTED")
        assert number not in str(caught.value) and "s3cr3t" not in str(caught.value)
        assert rig.delivered() == []

    @pytest.mark.parametrize(
        "message",
        [
            OutgoingSms(id="job-5", to="4520000001", text=TEXT),  # no +
            OutgoingSms(id="job-5", to="+45 20 00 00 01", text=TEXT),
            OutgoingSms(id="job-5", to="+4520000001", text="   "),
            OutgoingSms(id="job 5", to="+4520000001", text=TEXT),
            OutgoingSms(id="job-5", to="+4520000001", text="x" * 1601),
        ],
    )
    def test_a_message_that_cannot_be_sent_is_refused_before_sending(
        self, rig: Rig, message: OutgoingSms
    ) -> None:
        with pytest.raises(InvalidInput):
            rig.gateway.send(message)
        assert rig.delivered() == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestTheHttpGateway:
    def test_a_wrong_token_is_a_misconfiguration_retried_like_an_outage(
        self, tmp_path: Path
    ) -> None:
        # Every text would be refused the same way until the settings are fixed:
        # the texts must wait (and the peer circuit alert), not each die at once.
        with SmsCapture(tmp_path, token="right") as capture:
            gateway = HttpSmsGateway(capture.url, token=SecretStr("wrong"))
            with pytest.raises(ExternalError) as caught:
                gateway.send(OutgoingSms(id="a", to="+4520000001", text=TEXT))
            gateway.close()
            assert caught.value.retryable is True
            assert caught.value.code == "SMS_GATEWAY_MISCONFIGURED"
            assert "RESIM_SMS_GATEWAY_TOKEN" in caught.value.message
            assert "wrong" not in str(caught.value)
            assert capture.messages() == []

    def test_a_wrong_path_is_a_misconfiguration_too(self, tmp_path: Path) -> None:
        with SmsCapture(tmp_path) as capture:
            gateway = HttpSmsGateway(capture.url.replace("/messages", "/nowhere"))
            with pytest.raises(ExternalError) as caught:
                gateway.send(OutgoingSms(id="a", to="+4520000001", text=TEXT))
            gateway.close()
            assert (caught.value.retryable, caught.value.code) == (
                True,
                "SMS_GATEWAY_MISCONFIGURED",
            )

    def test_a_gateway_that_is_down_is_retryable(self) -> None:
        gateway = HttpSmsGateway(f"http://127.0.0.1:{_closed_port()}/messages", timeout=2)
        with pytest.raises(ExternalError) as caught:
            gateway.send(OutgoingSms(id="a", to="+4520000001", text=TEXT))
        gateway.close()
        assert caught.value.retryable is True
        assert caught.value.code == "SMS_UNAVAILABLE"

    def test_the_sender_name_travels_and_the_capture_survives_a_restart(
        self, tmp_path: Path
    ) -> None:
        with SmsCapture(tmp_path) as capture:
            gateway = HttpSmsGateway(capture.url, sender="Nordlys")
            gateway.send(OutgoingSms(id="a", to="+4520000001", text=TEXT))
            gateway.close()
        with SmsCapture(tmp_path) as again:  # a restarted capture still knows the ids
            gateway = HttpSmsGateway(again.url)
            gateway.send(OutgoingSms(id="a", to="+4520000001", text=TEXT))
            gateway.send(OutgoingSms(id="b", to="+4520000002", text="<b>hi</b>"))
            gateway.close()
        stored = read_outbox(tmp_path)
        assert [(m.seq, m.id, m.sender) for m in stored] == [
            (1, "a", "Nordlys"),
            (2, "b", "resim"),
        ]
        page = render_outbox_html(stored)
        assert "&lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi" not in page

    def test_the_capture_answers_bad_requests_with_4xx(self, tmp_path: Path) -> None:
        import httpx

        with SmsCapture(tmp_path) as capture:
            assert httpx.post(capture.url, content=b"not json").status_code == 400
            assert httpx.post(capture.url, json={"id": "x", "to": "+1"}).status_code == 400
            assert httpx.post(capture.url.replace("/messages", "/x"), json={}).status_code == 404
            assert capture.messages() == []
