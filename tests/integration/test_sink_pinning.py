"""Issue 13, finding 7: the HTTP event sink connects only to an address it has just checked.

Over real HTTPS on loopback. The sink's name (``sink.bank.test``) exists in no
DNS: it resolves only through the test's FakeResolver, so a delivery that
succeeds went to the pinned, checked address, while the Host header, SNI and
certificate check stayed on the name. Nothing here can connect outside
loopback (``LoopbackOnly`` refuses and records it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sink_support import LoopbackOnly, TlsSink, loopback_sockets_only, start_tls_sink

from resim.adapters.events.http import HttpEventSink
from resim.adapters.events.resolver import FakeResolver
from resim.domain.sink_address import SinkAddressRules, parse_allow_list
from resim.errors import SinkError
from resim.services.ports import OutgoingEvent

pytestmark = pytest.mark.integration
__all__ = ["loopback_sockets_only"]  # autouse: no name look-up, loopback connections only

NAME = "sink.bank.test"
TOKEN = "pinning-sink-token-3c1d"
LAB = SinkAddressRules(allow=parse_allow_list("127.0.0.0/8"))  # RESIM_CAMARA_SINK_ALLOW


@pytest.fixture
def tls_sink(tmp_path: Path) -> Iterator[TlsSink]:
    sink = start_tls_sink(tmp_path, NAME)
    yield sink
    sink.stop()


def event(sink: str) -> OutgoingEvent:
    return OutgoingEvent(id="ev-1", sink=sink, body={"id": "ev-1"}, access_token=TOKEN)


def http_sink(
    tls_sink: TlsSink, resolver: FakeResolver, rules: SinkAddressRules = LAB
) -> tuple[HttpEventSink, LoopbackOnly]:
    backend = LoopbackOnly()
    sink = HttpEventSink(
        timeout=5.0,
        rules=rules,
        resolver=resolver,
        verify=tls_sink.client_context,
        network_backend=backend,
    )
    return sink, backend


class TestTheConnectionIsPinned:
    def test_delivered_to_the_checked_address_with_host_sni_and_tls_on_the_name(
        self, tls_sink: TlsSink
    ) -> None:
        resolver = FakeResolver({NAME: ["127.0.0.1"]})
        sink, backend = http_sink(tls_sink, resolver)
        assert sink.deliver(event(tls_sink.url())) == 204
        assert backend.asked == ["127.0.0.1"] and resolver.lookups == [NAME]
        [seen] = tls_sink.requests
        assert seen.host == f"{NAME}:{tls_sink.port}"
        assert seen.authorization == f"Bearer {TOKEN}"
        assert tls_sink.sni == [NAME]
        sink.close()

    def test_the_certificate_is_checked_against_the_name_not_the_address(
        self, tls_sink: TlsSink
    ) -> None:
        resolver = FakeResolver({"other.bank.test": ["127.0.0.1"]})
        sink, backend = http_sink(tls_sink, resolver)
        with pytest.raises(SinkError) as failed:
            sink.deliver(event(tls_sink.url("other.bank.test")))
        assert failed.value.code == "SINK_UNAVAILABLE"
        assert backend.asked == ["127.0.0.1"]  # it connected, then refused the certificate
        assert tls_sink.requests == [] and TOKEN not in failed.value.message


class TestRefusedAddressesAreNeverContacted:
    @pytest.mark.parametrize(
        ("answers", "shown"),
        [
            (["10.0.0.1"], "10.0.0.1"),
            (["169.254.169.254"], "169.254.169.254"),
            (["127.0.0.1", "10.0.0.1"], "10.0.0.1"),
            (["::ffff:10.0.0.1"], "10.0.0.1"),
        ],
    )
    def test_a_name_that_now_resolves_to_a_private_address(
        self, tls_sink: TlsSink, answers: list[str], shown: str
    ) -> None:
        resolver = FakeResolver({NAME: answers})
        sink, backend = http_sink(tls_sink, resolver)
        with pytest.raises(SinkError) as refused:
            sink.deliver(event(tls_sink.url()))
        assert refused.value.code == "SINK_ADDRESS_REFUSED" and not refused.value.retryable
        assert shown in refused.value.message and NAME in refused.value.message
        assert backend.asked == [] and tls_sink.requests == []

    @pytest.mark.parametrize(
        "url",
        [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/hook",
            "https://[::ffff:a9fe:a9fe]/hook",
            "https://[fd00::1]:8443/hook",
        ],
    )
    def test_an_address_literal_is_checked_without_dns(self, tls_sink: TlsSink, url: str) -> None:
        resolver = FakeResolver()
        sink, backend = http_sink(tls_sink, resolver)
        with pytest.raises(SinkError) as refused:
            sink.deliver(event(url))
        assert refused.value.code == "SINK_ADDRESS_REFUSED"
        assert backend.asked == [] and resolver.lookups == []

    def test_without_the_lab_allow_list_loopback_is_refused_too(self, tls_sink: TlsSink) -> None:
        sink, backend = http_sink(
            tls_sink, FakeResolver({NAME: ["127.0.0.1"]}), rules=SinkAddressRules()
        )
        with pytest.raises(SinkError) as refused:
            sink.deliver(event(tls_sink.url()))
        assert refused.value.code == "SINK_ADDRESS_REFUSED" and "loopback" in refused.value.message
        assert backend.asked == [] and tls_sink.requests == []

    def test_a_name_without_an_address_is_retried_later(self, tls_sink: TlsSink) -> None:
        sink, backend = http_sink(tls_sink, FakeResolver())
        with pytest.raises(SinkError) as failed:
            sink.deliver(event(tls_sink.url()))
        assert failed.value.code == "SINK_UNAVAILABLE" and failed.value.retryable
        assert backend.asked == []
