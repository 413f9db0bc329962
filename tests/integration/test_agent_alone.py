"""Issue 13, finding 9: one agent can no longer complete a swap alone.

The attack, four calls by one agent and nobody else: record an ID check for
the line, open a request on the agent channel, verify it with that check,
read the activation code. Replayed over real HTTP on loopback, SQLite and
PostgreSQL, under each ``agent_confirmation`` policy: the request waits for a
second staff member or the customer's own factor, and the agent who opened it
never reads its code (another agent with their own check, or the customer, can).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from identity_support import bearer, signed_in
from risk_support import origin_rules_off, set_policy
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.domain.policy import BrandPolicy
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.errors import InvalidInput
from resim.services.replacement import queries

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


@dataclass
class Agent:
    headers: dict[str, str]
    actor: str


def agent(system: System, role: str = "agent") -> Agent:
    token, staff_id = signed_in(system.ctx, role)
    return Agent(bearer(token), f"staff:{staff_id}")


def id_check(http: httpx.Client, who: Agent, msisdn: str) -> None:
    checked = http.post(
        "/v1/identity-checks",
        json={"msisdn": msisdn, "document_type": "passport", "last_digits": "4242"},
        headers=who.headers,
    )
    assert checked.status_code == 201, checked.text


def open_as_agent(http: httpx.Client, who: Agent, msisdn: str) -> str:
    made = http.post(
        "/v1/requests",
        json={"msisdn": msisdn, "reason": "lost", "channel": "agent"},
        headers=who.headers,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def read_code(http: httpx.Client, who: Agent | None, rid: str) -> list[httpx.Response]:
    """The activation code and its QR code, as ``who`` (None: the customer's session)."""
    headers = who.headers if who else {}
    return [
        http.get(f"/v1/requests/{rid}/activation", headers=headers),
        http.get(f"/v1/requests/{rid}/activation/qr.png", headers=headers),
    ]


class TestTheFourCallAttack:
    def test_by_default_the_request_waits_for_a_second_staff_member(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _, _ = add_line(system, 5001)
        insider = agent(system)
        id_check(http, insider, msisdn)  # 1: the agent's own word
        rid = open_as_agent(http, insider, msisdn)  # 2
        verified = http.post(f"/v1/requests/{rid}/verification", json={}, headers=insider.headers)
        assert verified.status_code == 200, verified.text  # 3
        assert verified.json()["state"] == "in_review"
        system.run_jobs()
        for answer in read_code(http, insider, rid):  # 4
            assert answer.status_code in (403, 409), answer.text
            assert "1$" not in answer.text
        view = queries.get_request_view(system.ctx, rid)
        assert view["state"] == "in_review" and view["new_iccid"] is None
        assert "agent_confirmation" in [r["rule"] for r in view["risk"]["reasons"]]
        # The agent cannot approve it; a reviewer who did not make it can.
        refused = http.post(
            f"/v1/requests/{rid}/review", json={"decision": "approve"}, headers=insider.headers
        )
        assert refused.status_code == 403
        reviewer = agent(system, "reviewer")
        approved = http.post(
            f"/v1/requests/{rid}/review", json={"decision": "approve"}, headers=reviewer.headers
        )
        assert approved.status_code == 200 and approved.json()["state"] == "approved"
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "ready"

        # Ready now: the agent who opened it still never reads the code ...
        for answer in read_code(http, insider, rid):
            assert answer.status_code == 403, answer.text
            assert answer.json()["code"] == "SECOND_PERSON_REQUIRED"
            assert "1$" not in answer.text
        # ... nor does their console page show it; another agent with their own check does.
        page = http.get(f"/console/requests/{rid}", headers=insider.headers)
        assert page.status_code == 200 and "1$" not in page.text
        colleague = agent(system)
        assert read_code(http, colleague, rid)[0].json()["code"] == "IDENTITY_CHECK_REQUIRED"
        id_check(http, colleague, msisdn)
        code, qr = read_code(http, colleague, rid)
        assert code.status_code == 200 and code.json()["activation_code"].startswith("1$")
        assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"

    def test_a_reviewer_cannot_approve_a_request_they_opened_themselves(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, _, _, _ = add_line(system, 5002)
        insider, reviewer = agent(system), agent(system, "reviewer")
        id_check(http, insider, msisdn)
        made = http.post(
            "/v1/requests",
            json={"msisdn": msisdn, "reason": "lost", "channel": "agent"},
            headers=reviewer.headers,
        )
        rid = made.json()["id"]
        # Verified with the agent's check, opened by the reviewer: the reviewer is involved.
        http.post(f"/v1/requests/{rid}/verification", json={}, headers=insider.headers)
        assert queries.get_request_view(system.ctx, rid)["state"] == "in_review"
        self_review = http.post(
            f"/v1/requests/{rid}/review", json={"decision": "approve"}, headers=reviewer.headers
        )
        assert self_review.status_code == 403 and self_review.json()["code"] == "SELF_REVIEW"
        assert queries.get_request_view(system.ctx, rid)["state"] == "in_review"


class TestTheCustomersOwnFactor:
    def test_without_second_staff_the_agent_needs_the_customers_code(
        self, system: System, http: httpx.Client
    ) -> None:
        set_policy(system, agent_confirmation=["customer_factor"])
        msisdn, email, _, _ = add_line(system, 5003)
        insider = agent(system)
        id_check(http, insider, msisdn)
        rid = open_as_agent(http, insider, msisdn)
        alone = http.post(f"/v1/requests/{rid}/verification", json={}, headers=insider.headers)
        assert alone.status_code == 422, alone.text
        assert alone.json()["code"] == "VERIFICATION_INCOMPLETE"
        assert queries.get_request_view(system.ctx, rid)["state"] == "requested"

        system.run_jobs()  # the code goes to the e-mail address on file: the customer's
        with_code = http.post(
            f"/v1/requests/{rid}/verification",
            json={"otp": system.code_for(email)},
            headers=insider.headers,
        )
        assert with_code.status_code == 200 and with_code.json()["state"] == "approved"
        system.run_jobs()
        assert queries.get_request_view(system.ctx, rid)["state"] == "ready"
        for answer in read_code(http, insider, rid):
            assert answer.status_code == 403 and answer.json()["code"] == "SECOND_PERSON_REQUIRED"

    def test_with_both_the_customers_code_spares_the_second_staff_member(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, _ = add_line(system, 5004)
        insider = agent(system)
        id_check(http, insider, msisdn)
        rid = open_as_agent(http, insider, msisdn)
        system.run_jobs()
        verified = http.post(
            f"/v1/requests/{rid}/verification",
            json={"otp": system.code_for(email)},
            headers=insider.headers,
        )
        assert verified.status_code == 200 and verified.json()["state"] == "approved"

    def test_second_staff_alone_holds_even_a_request_with_the_customers_code(
        self, system: System, http: httpx.Client
    ) -> None:
        set_policy(system, agent_confirmation=["second_staff"])
        msisdn, email, _, _ = add_line(system, 5005)
        insider = agent(system)
        id_check(http, insider, msisdn)
        rid = open_as_agent(http, insider, msisdn)
        system.run_jobs()
        verified = http.post(
            f"/v1/requests/{rid}/verification",
            json={"otp": system.code_for(email)},
            headers=insider.headers,
        )
        assert verified.status_code == 200 and verified.json()["state"] == "in_review"


class TestTheCustomersOwnRequestsAreUnchanged:
    def test_a_customer_verifying_alone_is_approved_and_reads_the_code(
        self, system: System, http: httpx.Client
    ) -> None:
        msisdn, email, _, _ = add_line(system, 5006)
        opened = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "lost"})
        assert opened.status_code == 202  # anonymous: the request's id comes by mail
        system.run_jobs()
        rid = system.request_id_from_mail(email)
        verified = http.post(
            f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
        )
        assert verified.json()["state"] == "approved"
        system.run_jobs()
        customer = Agent(bearer(verified.json()["session_token"]), "customer")
        assert [a.status_code for a in read_code(http, customer, rid)] == [200, 200]


@pytest.mark.parametrize("bad", [[], ["agent_alone"], ["second_staff", "second_staff"], "x"])
def test_a_policy_cannot_let_the_agent_alone_through(bad: object) -> None:
    with pytest.raises(InvalidInput):
        BrandPolicy(agent_confirmation=bad)  # type: ignore[arg-type]
