"""Whose address a request comes from (issue 13, finding 15): X-Forwarded-For is
believed only from RESIM_TRUSTED_PROXIES, walking the chain from the right."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from resim.entrypoints.api.forwarded import (
    ProxyHeadersMiddleware,
    client_address,
    is_loopback,
    networks,
)
from resim.settings import Settings

PROXIES = networks(["10.0.0.0/8", "127.0.0.1", "::1"])


class TestClientAddress:
    def test_without_trusted_proxies_the_header_is_ignored(self) -> None:
        assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"

    def test_an_untrusted_peer_cannot_name_another_address(self) -> None:
        assert client_address("198.51.100.4", ["203.0.113.9"], PROXIES) == "198.51.100.4"

    def test_a_trusted_proxy_names_the_client(self) -> None:
        assert client_address("10.1.2.3", ["203.0.113.9"], PROXIES) == "203.0.113.9"

    def test_the_right_most_untrusted_hop_wins_over_what_the_client_wrote(self) -> None:
        # The client wrote "1.2.3.4" itself; the proxy appended the real peer.
        chain = ["1.2.3.4, 203.0.113.9, 10.0.0.7"]
        assert client_address("10.1.2.3", chain, PROXIES) == "203.0.113.9"

    def test_several_headers_are_one_list(self) -> None:
        assert client_address("10.1.2.3", ["1.2.3.4", "203.0.113.9"], PROXIES) == "203.0.113.9"

    def test_garbage_stops_the_walk_at_the_last_proxy(self) -> None:
        assert client_address("10.1.2.3", ["not-an-address"], PROXIES) == "10.1.2.3"
        assert client_address("10.1.2.3", ["junk, 10.0.0.9"], PROXIES) == "10.0.0.9"

    def test_only_proxies_in_the_chain_gives_the_left_most(self) -> None:
        assert client_address("10.1.2.3", ["10.0.0.8, 10.0.0.9"], PROXIES) == "10.0.0.8"

    def test_ipv6_and_ports(self) -> None:
        assert client_address("::1", ["[2001:db8::5]:4711"], PROXIES) == "2001:db8::5"
        assert client_address("::1", ["192.0.2.1:80"], PROXIES) == "192.0.2.1"

    def test_no_header_from_a_proxy_is_the_proxy(self) -> None:
        assert client_address("10.1.2.3", [], PROXIES) == "10.1.2.3"


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert not is_loopback("203.0.113.9") and not is_loopback(None)
    assert not is_loopback("testclient")


class TestTheSetting:
    def test_is_empty_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("RESIM_TRUSTED_PROXIES", raising=False)
        assert Settings().trusted_proxies == []

    def test_takes_addresses_and_networks_comma_separated(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RESIM_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,::1")
        assert Settings().trusted_proxies == ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]

    def test_refuses_what_is_not_an_address(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RESIM_TRUSTED_PROXIES", "proxy.example")
        with pytest.raises(ValueError, match="RESIM_TRUSTED_PROXIES"):
            Settings()


def _through(middleware: ProxyHeadersMiddleware, scope: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    middleware.app = app
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    return seen


def test_the_middleware_rewrites_client_and_scheme_only_for_trusted_peers() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    base = {"type": "http", "scheme": "http", "headers": headers}
    trusting = ProxyHeadersMiddleware(lambda *a: None, trusted=PROXIES)  # type: ignore[arg-type]
    seen = _through(trusting, {**base, "client": ("10.0.0.1", 5000)})
    assert seen["client"][0] == "203.0.113.9" and seen["scheme"] == "https"
    seen = _through(trusting, {**base, "client": ("198.51.100.1", 5000)})
    assert seen["client"][0] == "198.51.100.1" and seen["scheme"] == "http"
    default = ProxyHeadersMiddleware(lambda *a: None, trusted=())  # type: ignore[arg-type]
    seen = _through(default, {**base, "client": ("127.0.0.1", 5000)})
    assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"
