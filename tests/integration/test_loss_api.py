"""Loss reports over real HTTP (issue 12): who may block and lift, and who may not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from identity_support import bearer, client_key, signed_in
from loss_support import PIN, add_customer, loss_code
from tenancy_support import OTHER, add_other_brand, snapshot
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.console import console

pytestmark = pytest.mark.integration


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def path(msisdn: str, tail: str = "") -> str:
    return f"/v1/lines/{msisdn}/loss-report{tail}"


def reports(system: System) -> list[Any]:
    with system.engine.connect() as conn:
        return list(conn.execute(sa.select(orm.loss_report.c.id, orm.loss_report.c.state)))


class TestAClientWithTheScope:
    def test_blocks_reads_and_lifts_with_the_customers_two_factors(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, imsi = add_customer(system, 401)
        key = bearer(client_key(system.ctx, "lines:loss", brand_id="dk"))
        made = http.post(path(msisdn), json={"reason": "stolen"}, headers=key)
        assert made.status_code == 201, made.text
        assert made.json()["blocked"] is True and made.json()["channel"] == "api"
        again = http.post(path(msisdn), json={"reason": "lost"}, headers=key)
        assert again.status_code == 200 and again.json()["report_id"] == made.json()["report_id"]
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is False
        assert http.get(path(msisdn), headers=key).json()["suspended"] is True

        # the client's word is not enough to lift: the customer's two factors are
        weak = http.post(path(msisdn, "/lift"), json={"pin": PIN}, headers=key)
        assert weak.status_code == 422 and weak.json()["code"] == "VERIFICATION_INCOMPLETE"
        sent = http.post(path(msisdn, "/code"), headers=key)
        assert sent.status_code == 202 and sent.json() == {"sent": True}
        system.run_jobs()
        body = {"otp": loss_code(system, email), "pin": PIN}
        lifted = http.post(path(msisdn, "/lift"), json=body, headers=key)
        assert lifted.status_code == 200, lifted.text
        assert lifted.json()["blocked"] is False and lifted.json()["state"] == "lifted"
        assert loss_code(system, email) not in lifted.text
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is True

    def test_malformed_input_is_a_clear_4xx_and_changes_nothing(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _, imsi = add_customer(system, 402)
        key = bearer(client_key(system.ctx, "lines:loss", brand_id="dk"))
        for body in ({"reason": "damaged"}, {}, {"reason": "lost", "extra": 1}, ["lost"]):
            answer = http.post(path(msisdn), json=body, headers=key)
            assert answer.status_code == 422, body
        bad_otp = http.post(path(msisdn, "/lift"), json={"otp": "abc", "pin": PIN}, headers=key)
        assert bad_otp.status_code == 422
        assert http.post(
            path("not-a-number"), json={"reason": "lost"}, headers=key
        ).status_code in (
            404,
            422,
        )
        assert (
            http.post(path("+4520100000"), json={"reason": "lost"}, headers=key).status_code == 404
        )
        not_blocked = http.post(path(msisdn, "/lift"), json={"pin": PIN}, headers=key)
        assert not_blocked.status_code == 409 and not_blocked.json()["code"] == "NOT_BLOCKED"
        system.run_jobs()
        assert reports(system) == []
        assert system.core.is_enabled(imsi=imsi) is True


class TestCallersWhoMayNot:
    def test_anonymous_is_401_and_a_client_without_the_scope_403(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _, _ = add_customer(system, 410)
        other_scope = bearer(client_key(system.ctx, "lines:lock", brand_id="dk"))
        for method, url in (
            ("GET", path(msisdn)),
            ("POST", path(msisdn)),
            ("POST", path(msisdn, "/code")),
            ("POST", path(msisdn, "/lift")),
        ):
            body = {"reason": "lost"} if url == path(msisdn) else {}
            assert http.request(method, url, json=body).status_code == 401
            assert http.request(method, url, json=body, headers=other_scope).status_code == 403
        assert reports(system) == []

    def test_another_brands_staff_and_clients_get_404_and_change_nothing(
        self, system: System, http: httpx.Client
    ) -> None:
        add_other_brand(system)
        msisdn, email, _, imsi = add_customer(system, 411)
        own = bearer(client_key(system.ctx, "lines:loss", brand_id="dk"))
        assert http.post(path(msisdn), json={"reason": "lost"}, headers=own).status_code == 201
        system.run_jobs()
        token, _ = signed_in(system.ctx, "agent", brand_id=OTHER)
        foreign = [bearer(token), bearer(client_key(system.ctx, "lines:loss", brand_id=OTHER))]
        before = (snapshot(system), reports(system), len(system.mail.sent))
        for headers in foreign:
            assert http.get(path(msisdn), headers=headers).status_code == 404
            assert (
                http.post(path(msisdn), json={"reason": "lost"}, headers=headers).status_code == 404
            )
            assert http.post(path(msisdn, "/code"), headers=headers).status_code == 404
            lift = http.post(path(msisdn, "/lift"), json={"pin": PIN}, headers=headers)
            assert lift.status_code == 404
            assert "blocked" not in lift.text
        system.run_jobs()
        assert (snapshot(system), reports(system), len(system.mail.sent)) == before
        assert system.core.is_enabled(imsi=imsi) is False
        assert email not in str(before)


class TestAnAgent:
    def test_needs_a_recorded_id_check_to_block_and_to_lift(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _, imsi = add_customer(system, 420)
        token, agent = signed_in(system.ctx, "agent", brand_id="dk")
        headers = bearer(token)
        refused = http.post(path(msisdn), json={"reason": "stolen"}, headers=headers)
        assert refused.status_code == 400 and reports(system) == []
        console.record_identity_check(
            system.ctx, staff_id=agent, msisdn=msisdn, document_type="passport", last_digits="4321"
        )
        made = http.post(path(msisdn), json={"reason": "stolen"}, headers=headers)
        assert made.status_code == 201 and made.json()["channel"] == "api"
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is False
        lifted = http.post(path(msisdn, "/lift"), json={}, headers=headers)
        assert lifted.status_code == 200, lifted.text
        system.run_jobs()
        assert system.core.is_enabled(imsi=imsi) is True
