"""Issue 13, finding 7: SSRF through CAMARA subscriptions, over real HTTP on loopback.

The attacker's subscriptions named ``https://`` sinks on loopback, private and
link-local addresses, and the worker POSTed events (with the sink's bearer
token) to PostgreSQL, Redis, 10.0.0.1 and 169.254.169.254. Now:

* creation refuses such a sink with 400 INVALID_SINK (the spec's code), also
  when it is a name that resolves to one, and stores nothing;
* delivery checks again: a subscription stored before the rule, or whose name
  resolves to a private address by now, is not delivered and its event is
  marked failed with the reason.

Production rules here (no loopback allowance). Names resolve only through the
test's FakeResolver, and the worker's HTTP sink sits on ``LoopbackOnly``: no
test can reach anything but loopback, even with the protection removed.
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from camara_subs_openapi import check_response
from camara_subs_support import (
    PUBLIC_ADDRESS,
    SINK_NAMES,
    SINK_TOKEN,
    Resim,
    make_resim,
    subscription_body,
)
from sink_support import LoopbackOnly, loopback_sockets_only
from test_camara_subscriptions_api import ALL_SCOPES, AUD, ISS, LIST

from resim.adapters.db import orm
from resim.adapters.events.http import HttpEventSink
from resim.adapters.events.resolver import FakeResolver
from resim.adapters.jwks import StaticJwksSource
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.domain.sink_address import SinkAddressRules
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.camara.auth import CamaraAccess
from resim.entrypoints.camara.mount import CamaraRuntime
from resim.entrypoints.camara.ratelimit import RateLimiter
from resim.entrypoints.camara.subscriptions import PREFIX
from resim.entrypoints.camara.tokens import TokenRules, TokenVerifier
from resim.entrypoints.serving import ServerThread
from resim.errors import InvalidInput
from resim.services.camara import camara_subscriptions as subs

pytestmark = pytest.mark.integration
__all__ = ["loopback_sockets_only"]  # autouse: no name look-up, loopback connections only

# Names an attacker controls, pointing where they should not.
NAMES = {
    **{name: [PUBLIC_ADDRESS] for name in SINK_NAMES},
    "hooks.bank.test": [PUBLIC_ADDRESS],  # public today; repointed by a test
    "loopback.attacker.test": ["127.0.0.1"],
    "v6loop.attacker.test": ["::1"],
    "intranet.attacker.test": ["10.0.0.1"],
    "metadata.attacker.test": ["169.254.169.254"],
    "mixed.attacker.test": [PUBLIC_ADDRESS, "10.0.0.1"],
    "mapped.attacker.test": ["::ffff:127.0.0.1"],
}


class Stack:
    def __init__(self, resim: Resim, resolver: FakeResolver, backend: LoopbackOnly) -> None:
        self.resim = resim
        self.resolver = resolver
        self.backend = backend
        self.issuer = LocalTokenIssuer.generate(issuer=ISS, audience=AUD)
        verifier = TokenVerifier(
            TokenRules(issuer=ISS, audience=AUD),
            StaticJwksSource(self.issuer.jwks()),
            clock=resim.clock,
        )
        runtime = CamaraRuntime(
            CamaraAccess(verifier, RateLimiter(rate=0, burst=1)), issuer=self.issuer
        )
        self.server = ServerThread(build_app(resim.ctx, ApiConfig(camara=runtime))).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=10)

    def post(self, body: dict[str, Any]) -> httpx.Response:
        token = self.issuer.issue(scopes=ALL_SCOPES, client_id="bank-a", now=self.resim.clock.now())
        response = self.http.post(
            f"{PREFIX}/subscriptions", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        check_response("post", LIST, response)
        return response

    def subscriptions(self) -> int:
        with self.resim.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(orm.camara_subscription)
                ).scalar_one()
            )

    def events(self) -> list[Any]:
        e = orm.camara_event
        with self.resim.engine.connect() as conn:
            return list(conn.execute(sa.select(e.c.state, e.c.last_error, e.c.type)).all())

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        self.resim.engine.dispose()


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    resolver = FakeResolver(NAMES)
    backend = LoopbackOnly()
    # The worker's sink as bootstrap builds it for production: public addresses only.
    sink = HttpEventSink(
        timeout=2.0, rules=SinkAddressRules(), resolver=resolver, network_backend=backend
    )
    resim = make_resim(
        db_url,
        tmp_path,
        event_sink=sink,
        resolver=resolver,
        camara_sink_allow_http_loopback=False,
    )
    system = Stack(resim, resolver, backend)
    yield system
    system.close()


class TestCreationRefusesSinksThatAreNotPublic:
    @pytest.mark.parametrize(
        "sink",
        [
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "https://[::1]/hook",
            "https://127.0.0.1/hook",
            "https://127.0.0.1:5432/",
            "https://localhost:6379/",
            "https://[::ffff:10.0.0.1]/hook",
            "https://[fd00::1]/hook",
            "https://0.0.0.0/hook",
            "https://loopback.attacker.test/hook",
            "https://v6loop.attacker.test/hook",
            "https://intranet.attacker.test/hook",
            "https://metadata.attacker.test/hook",
            "https://mixed.attacker.test/hook",
            "https://mapped.attacker.test/hook",
            "https://nowhere.attacker.test/hook",
        ],
    )
    def test_400_invalid_sink_and_nothing_stored(self, stack: Stack, sink: str) -> None:
        msisdn = stack.resim.add_line()
        response = stack.post(subscription_body(phone=msisdn, sink=sink))
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_SINK")
        assert SINK_TOKEN not in response.text
        assert stack.subscriptions() == 0
        assert stack.backend.asked == []  # creation never connects anywhere

    def test_a_public_sink_is_accepted(self, stack: Stack) -> None:
        response = stack.post(subscription_body(phone=stack.resim.add_line()))
        assert response.status_code == 201, response.text
        assert "rp.example.com" in stack.resolver.lookups

    def test_a_lab_allow_list_admits_its_network(self, db_url: str, tmp_path: Path) -> None:
        lab = make_resim(
            db_url,
            tmp_path,
            resolver=FakeResolver(NAMES),
            camara_sink_allow_http_loopback=False,
            camara_sink_allow="10.0.0.0/24",
        )
        try:
            body = subscription_body(phone=lab.add_line(), sink="https://10.0.0.1/hook")
            created = subs.create_subscription(lab.ctx, caller=subs.Caller("lab-bank"), body=body)
            assert created["status"] == "ACTIVE"  # created only: nothing is delivered here
            other = subscription_body(phone=lab.add_line(), sink="https://10.0.1.1/hook")
            with pytest.raises(InvalidInput, match="private") as refused:
                subs.create_subscription(lab.ctx, caller=subs.Caller("lab-bank"), body=other)
            assert refused.value.code == "INVALID_SINK"
        finally:
            lab.engine.dispose()


class TestDeliveryChecksAgain:
    def _repoint_stored_sink(self, stack: Stack, sink: str) -> None:
        with stack.resim.engine.begin() as conn:  # as the attacker's rows were stored before
            conn.execute(sa.update(orm.camara_subscription).values(sink=sink))

    @pytest.mark.parametrize(
        "stored",
        ["https://10.0.0.1/hook", "https://169.254.169.254/latest/", "http://127.0.0.1:6379/"],
    )
    def test_a_subscription_stored_before_the_rule_is_not_delivered(
        self, stack: Stack, stored: str
    ) -> None:
        msisdn = stack.resim.add_line()
        assert stack.post(subscription_body(phone=msisdn)).status_code == 201
        self._repoint_stored_sink(stack, stored)
        stack.resim.swap(msisdn)
        [(state, last_error, _type)] = stack.events()
        assert state == "failed"
        assert last_error.startswith(("SINK_ADDRESS_REFUSED: ", "SINK_INVALID: "))
        assert SINK_TOKEN not in last_error
        assert stack.backend.asked == []

    def test_a_name_that_now_resolves_to_a_private_address_is_not_delivered(
        self, stack: Stack
    ) -> None:
        msisdn = stack.resim.add_line()
        created = stack.post(subscription_body(phone=msisdn, sink="https://hooks.bank.test/ev"))
        assert created.status_code == 201, created.text
        stack.resolver.set("hooks.bank.test", "10.0.0.1")  # DNS repointed after creation
        stack.resim.swap(msisdn)
        [(state, last_error, _type)] = stack.events()
        assert state == "failed"
        assert last_error.startswith("SINK_ADDRESS_REFUSED: ")
        assert "hooks.bank.test resolves to 10.0.0.1" in last_error
        assert stack.backend.asked == []  # refused before any connection
