"""SEC-02/03/05 over real HTTP: offered combinations, 429 with Retry-After, unlock routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from identity_support import bearer, client_key
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.domain.policy import BrandPolicy
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.onboarding import seed

pytestmark = pytest.mark.integration
PIN = "5791"


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    seed.upsert_brand(
        system.ctx,
        seed.BrandSpec(
            "dk",
            "Nordlys Mobil",
            "DK",
            "DKK",
            "da",
            "Europe/Copenhagen",
            BrandPolicy(backoff_after_failures=2, backoff_base_seconds=30),
        ),
    )
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def test_create_lists_the_offered_combinations_and_verification_is_throttled(
    system: System, http: httpx.Client
) -> None:
    msisdn, email, _, _ = add_line(system, 301, pin=PIN)
    # The operator's app opens it (an anonymous caller is not told the factors).
    bss = bearer(client_key(system.ctx, "requests:write"))
    created = http.post("/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}, headers=bss)
    assert created.status_code == 201, created.text
    assert created.json()["verification_methods"] == [["email_otp", "pin"]]
    request_id = created.json()["id"]
    system.run_jobs()
    code = system.code_for(email)

    incomplete = http.post(f"/v1/requests/{request_id}/verification", json={"otp": code})
    assert incomplete.status_code == 422
    assert incomplete.json()["code"] == "VERIFICATION_INCOMPLETE"

    for _ in range(2):
        wrong = http.post(
            f"/v1/requests/{request_id}/verification", json={"otp": code, "pin": "0000"}
        )
        assert wrong.status_code == 400
        assert code not in wrong.text
    blocked = http.post(f"/v1/requests/{request_id}/verification", json={"otp": code, "pin": PIN})
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "30"
    assert code not in blocked.text and PIN not in blocked.text


def test_unlock_routes_schedule_the_unlock(system: System, http: httpx.Client) -> None:
    msisdn, email, _, _ = add_line(system, 302, pin=PIN, locked=True)
    started = http.post(f"/v1/lines/{msisdn}/unlock")
    assert started.status_code == 202, started.text
    assert started.json()["code_sent"] is True
    assert ["email_otp", "pin"] in started.json()["verification_methods"]
    assert msisdn not in started.text  # masked
    system.run_jobs()
    code = system.code_for(email)
    bad = http.post(f"/v1/lines/{msisdn}/unlock/confirm", json={"otp": code, "pin": "0000"})
    assert bad.status_code == 400
    done = http.post(f"/v1/lines/{msisdn}/unlock/confirm", json={"otp": code, "pin": PIN})
    assert done.status_code == 200, done.text
    assert "effective_at" in done.json()
    assert code not in done.text
    again = http.post(f"/v1/lines/{msisdn}/unlock/confirm", json={"otp": code, "pin": PIN})
    assert again.status_code == 409
    assert again.json()["code"] == "UNLOCK_PENDING"


def test_step_up_is_refused_for_a_request_not_held_for_it(
    system: System, http: httpx.Client
) -> None:
    msisdn, _, _, _ = add_line(system, 303, pin=PIN)
    bss = bearer(client_key(system.ctx, "requests:write"))
    created = http.post(
        "/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}, headers=bss
    ).json()
    answer = http.post(f"/v1/requests/{created['id']}/step-up", json={"totp": "123456"})
    assert answer.status_code == 409
    assert answer.json()["code"] == "NOT_AWAITING_STEP_UP"
    assert http.post(f"/v1/requests/{created['id']}/step-up", json={"pin": PIN}).status_code == 422
