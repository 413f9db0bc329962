"""Sign-in, customer sessions and the agent console over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from identity_support import PASSWORD, bearer, client_key, enrol, staff_session
from risk_support import origin_rules_off
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.adapters.db import orm
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread

pytestmark = pytest.mark.integration


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    origin_rules_off(system)  # anonymous callers send no device: see risk_support
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def count(system: System, table: sa.Table) -> int:
    with system.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


class TestStaffSignIn:
    def test_login_me_logout(self, system: System, http: httpx.Client) -> None:
        username, seed = enrol(system.ctx, "reviewer")
        code = pyotp.TOTP(seed).at(system.clock.now())
        wrong = http.post(
            "/v1/auth/staff/login",
            json={"username": username, "password": "guess-guess-guess", "totp": code},
        )
        assert wrong.status_code == 401
        assert wrong.json() == {
            "code": "LOGIN_FAILED",
            "message": "username, password or code is not correct",
        }
        ok = http.post(
            "/v1/auth/staff/login", json={"username": username, "password": PASSWORD, "totp": code}
        )
        assert ok.status_code == 200, ok.text
        token = ok.json()["session_token"]
        assert ok.json()["role"] == "reviewer" and PASSWORD not in ok.text
        me = http.get("/v1/auth/me", headers=bearer(token))
        assert me.status_code == 200 and me.json()["role"] == "reviewer"
        assert token not in me.text
        assert http.post("/v1/auth/logout", headers=bearer(token)).status_code == 204
        assert http.get("/v1/auth/me", headers=bearer(token)).status_code == 401

    def test_malformed_login_is_422_without_echo(self, system: System, http: httpx.Client) -> None:
        resp = http.post(
            "/v1/auth/staff/login",
            json={"username": "x", "password": "hunter2hunter2", "totp": "ab"},
        )
        assert resp.status_code == 422 and "hunter2hunter2" not in resp.text
        assert count(system, orm.auth_session) == 0


class TestCustomerSessions:
    def test_the_customer_who_verified_gets_a_session_for_that_request_only(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, _ = add_line(system, 900)
        opened = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "damaged"})
        assert opened.status_code == 202  # anonymous: the id comes by mail
        system.run_jobs()
        rid = system.request_id_from_mail(email)
        assert http.get(f"/v1/requests/{rid}").status_code == 401
        verified = http.post(
            f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
        )
        assert verified.status_code == 200, verified.text
        token = verified.json()["session_token"]
        assert token and verified.json()["session_expires_at"]
        customer = bearer(token)
        assert http.get(f"/v1/requests/{rid}", headers=customer).json()["state"] == "approved"
        system.run_jobs()
        act = http.get(f"/v1/requests/{rid}/activation", headers=customer)
        assert act.status_code == 200 and act.json()["activation_code"].startswith("1$")
        assert http.get("/v1/requests", headers=customer).status_code == 403
        assert http.get("/v1/requests/other", headers=customer).status_code == 404

    def test_a_client_verifying_on_the_customers_behalf_gets_no_session(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, _ = add_line(system, 901)
        key = bearer(client_key(system.ctx, "requests:write"))
        rid = http.post(
            "/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}, headers=key
        ).json()["id"]
        system.run_jobs()
        verified = http.post(
            f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}, headers=key
        )
        assert verified.status_code == 200 and verified.json()["session_token"] is None
        assert count(system, orm.auth_session) == 0

    def test_only_staff_use_the_agent_channel(self, system: System, http: httpx.Client) -> None:
        msisdn, _, _, _ = add_line(system, 902)
        resp = http.post(
            "/v1/requests", json={"msisdn": msisdn, "reason": "lost", "channel": "agent"}
        )
        assert resp.status_code == 403
        assert count(system, orm.replacement_request) == 0


class TestAgentConsole:
    def test_redacted_view_until_the_agent_records_an_id_check(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, _ = add_line(system, 910)
        agent = bearer(staff_session(system.ctx, "agent"))
        before = http.get(f"/v1/lines/{msisdn}", headers=agent)
        assert before.status_code == 200, before.text
        assert before.json()["redacted"] is True and email not in before.text
        assert before.json()["name"] == "K*** 9***"
        for bad in (
            {"msisdn": msisdn, "document_type": "passport", "last_digits": "123"},
            {"msisdn": msisdn, "document_type": "photo", "last_digits": "1234"},
            {"msisdn": msisdn, "document_type": "passport", "last_digits": "1234", "image": "x"},
        ):
            assert http.post("/v1/identity-checks", json=bad, headers=agent).status_code == 422
        assert count(system, orm.identity_check) == 0
        checked = http.post(
            "/v1/identity-checks",
            json={"msisdn": msisdn, "document_type": "driving_licence", "last_digits": "9876"},
            headers=agent,
        )
        assert checked.status_code == 201, checked.text
        after = http.get(f"/v1/lines/{msisdn}", headers=agent).json()
        assert after["redacted"] is False and after["email"] == email

    def test_an_agent_reads_an_activation_code_only_after_an_id_check(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, _ = add_line(system, 911)
        assert (
            http.post("/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}).status_code
            == 202
        )
        system.run_jobs()
        rid = system.request_id_from_mail(email)
        http.post(f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)})
        system.run_jobs()
        agent = bearer(staff_session(system.ctx, "agent"))
        denied = http.get(f"/v1/requests/{rid}/activation", headers=agent)
        assert denied.status_code == 403 and denied.json()["code"] == "IDENTITY_CHECK_REQUIRED"
        assert "1$" not in denied.text
        http.post(
            "/v1/identity-checks",
            json={"msisdn": msisdn, "document_type": "passport", "last_digits": "1111"},
            headers=agent,
        ).raise_for_status()
        assert http.get(f"/v1/requests/{rid}/activation", headers=agent).status_code == 200
