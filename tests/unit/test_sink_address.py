"""Issue 13, finding 7: which addresses a CAMARA sink may have, and the host check.

Pure rules (no I/O) and ``services.sink_guard`` with a FakeResolver (no DNS).
"""

from __future__ import annotations

import pydantic
import pytest

from resim.adapters.events.resolver import FakeResolver
from resim.domain.sink_address import SinkAddressRules, parse_allow_list
from resim.errors import ExternalError, Refused
from resim.services.camara.sink_guard import sink_addresses
from resim.settings import Settings

PUBLIC = SinkAddressRules()

REFUSED = [
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "not a public"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fec0::1", "site-local"),
    ("192.0.2.10", "private"),  # documentation
    ("2001:db8::1", "private"),  # documentation
    # IPv6 forms of an IPv4 address are judged by that address
    ("::ffff:127.0.0.1", "127.0.0.1 (inside"),
    ("::ffff:169.254.169.254", "169.254.169.254 (inside"),
    ("::10.0.0.1", "10.0.0.1 (inside"),
    ("64:ff9b::10.0.0.1", "10.0.0.1 (inside"),
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254 (inside"),
    ("2002:a00:1::1", "10.0.0.1 (inside"),
]


@pytest.mark.parametrize(("address", "why"), REFUSED, ids=[a for a, _ in REFUSED])
def test_addresses_that_are_not_public_are_refused(address: str, why: str) -> None:
    problem = PUBLIC.problem(address)
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert PUBLIC.problem(address) is None


def test_a_name_is_not_an_address() -> None:
    assert "not an IP address" in (PUBLIC.problem("sink.example.com") or "")


class TestTheOperatorsExceptions:
    def test_the_allow_list_opens_only_its_networks(self) -> None:
        lab = SinkAddressRules(allow=parse_allow_list(" 10.20.0.0/16 , fd00:20::/64"))
        assert lab.problem("10.20.3.4") is None
        assert lab.problem("::ffff:10.20.3.4") is None
        assert lab.problem("fd00:20::5") is None
        assert lab.problem("10.21.0.1") is not None
        assert lab.problem("169.254.169.254") is not None
        assert lab.problem("127.0.0.1") is not None

    def test_loopback_for_tests_opens_loopback_only(self) -> None:
        tests = SinkAddressRules(allow_loopback=True)
        assert tests.problem("127.0.0.1") is None
        assert tests.problem("::1") is None
        assert tests.problem("::ffff:127.0.0.1") is None
        assert tests.problem("10.0.0.1") is not None
        assert tests.problem("169.254.169.254") is not None

    @pytest.mark.parametrize("text", ["10.0.0.0/8,nonsense", "0.0.0.0/0", "::/0", "10.0.0.0/33"])
    def test_a_bad_allow_list_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError):
            parse_allow_list(text)

    def test_settings_refuse_a_bad_allow_list_at_start_up(self) -> None:
        with pytest.raises(pydantic.ValidationError, match=r"allow-list|every address"):
            Settings(camara_sink_allow="0.0.0.0/0")
        rules = Settings(camara_sink_allow="10.9.0.0/16").camara_sink_rules
        assert rules.problem("10.9.1.1") is None and not rules.allow_loopback


class TestEveryResolvedAddressIsChecked:
    resolver = FakeResolver(
        {
            "hooks.bank.test": ["93.184.215.14", "2606:2800:220:1::1"],
            "rebind.bank.test": ["93.184.215.14", "10.0.0.1"],
            "meta.bank.test": ["169.254.169.254"],
            "local.bank.test": ["127.0.0.1"],
        }
    )

    def check(self, host: str, rules: SinkAddressRules = PUBLIC) -> list[str]:
        return sink_addresses(host, 443, resolver=self.resolver, rules=rules)

    def test_a_public_name_gives_its_addresses(self) -> None:
        assert self.check("hooks.bank.test") == ["93.184.215.14", "2606:2800:220:1::1"]

    @pytest.mark.parametrize("host", ["rebind.bank.test", "meta.bank.test", "local.bank.test"])
    def test_one_bad_address_refuses_the_name(self, host: str) -> None:
        with pytest.raises(Refused) as refused:
            self.check(host)
        assert refused.value.code == "SINK_ADDRESS_REFUSED"
        assert host in refused.value.message

    def test_an_address_literal_is_not_resolved(self) -> None:
        before = len(self.resolver.lookups)
        with pytest.raises(Refused):
            self.check("10.0.0.1")
        assert self.check("8.8.8.8") == ["8.8.8.8"]
        assert len(self.resolver.lookups) == before

    def test_a_name_without_an_address(self) -> None:
        with pytest.raises(ExternalError) as failed:
            self.check("nowhere.bank.test")
        assert failed.value.code == "SINK_UNRESOLVED" and failed.value.retryable
