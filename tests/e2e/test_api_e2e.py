"""End to end over real HTTP: API <-> worker <-> SM-DP+ emulator, SMTP capture.

Runs on SQLite and PostgreSQL (``db_url``). The whole system is the demo stack
started on free loopback ports.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.mail.capture import read_mailbox
from resim.entrypoints.demo import DemoStack, start_demo
from resim.entrypoints.walkthrough import walkthrough
from resim.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[DemoStack]:
    settings = Settings(
        data_dir=tmp_path, secret_keys="gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
    )  # type: ignore[arg-type]
    url = "" if db_url.startswith("sqlite") else db_url
    started = start_demo(
        settings,
        api_port=0,
        smdp_port=0,
        smtp_port=0,
        sms_port=0,
        lines_per_brand=4,
        database_url=url,
        say=lambda _line: None,
    )
    yield started
    started.stop()


def wait_state(
    http: httpx.Client, rid: str, states: set[str], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = http.get(f"/v1/requests/{rid}").json()
        if view["state"] in states:
            return view
        time.sleep(0.05)
    raise AssertionError(f"stuck in {view.get('state')}")


def latest_code(stack: DemoStack, email: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in reversed(read_mailbox(stack.mail_dir)):
            if (
                email in mail.to
                and mail.kind == "one_time_code"
                and (m := re.search(r"^\s+(\d{6})\s*$", mail.text, re.M))
            ):
                return m.group(1)
        time.sleep(0.05)
    raise AssertionError("no code mail")


def test_walkthrough_completes_and_writes_a_sim_change(stack: DemoStack) -> None:
    done = walkthrough(stack, say=lambda _line: None)
    assert done["state"] == "completed"
    assert done["sim_change"]["new_iccid"] == done["new_iccid"]
    calls = httpx.get(f"{stack.emulator.url}/emulator/calls").json()
    orders = [
        c for c in calls if c["function"] == "downloadOrder" and c["outcome"] == "Executed-Success"
    ]
    assert len(orders) == 1


def test_lost_phone_over_http_with_a_real_emulator(stack: DemoStack) -> None:
    line = next(ln for ln in stack.data.lines[1:] if ln.pin is None)
    with httpx.Client(base_url=stack.api.url, timeout=10, headers=stack.client_headers) as http:
        created = http.post("/v1/requests", json={"msisdn": line.msisdn, "reason": "stolen"})
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        assert http.post(f"/v1/requests/{rid}/activation").status_code == 405
        not_ready = http.get(f"/v1/requests/{rid}/activation")
        assert not_ready.status_code == 409
        assert not_ready.json()["code"] == "ACTIVATION_NOT_AVAILABLE"
        verified = httpx.post(  # the customer, without credentials
            f"{stack.api.url}/v1/requests/{rid}/verification",
            json={"otp": latest_code(stack, line.email)},
        )
        assert verified.json()["state"] == "approved"
        customer = {"Authorization": f"Bearer {verified.json()['session_token']}"}
        wait_state(http, rid, {"ready"})
        assert httpx.get(f"{stack.api.url}/v1/requests/{rid}/activation").status_code == 401
        act = http.get(f"/v1/requests/{rid}/activation", headers=customer).json()
        assert act["activation_code"].startswith("1$")
        assert act["ios_install_url"].startswith("https://esimsetup.apple.com/")
        png = http.get(act["qr_png_url"], headers=customer)
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        svg = http.get(act["qr_svg_url"], headers=customer)
        assert b"<svg" in svg.content
        installed = httpx.post(
            f"{stack.emulator.url}/emulator/phone/install",
            json={"activation_code": act["qr_payload"]},
            timeout=20,
        )
        assert installed.status_code == 200, installed.text
        done = wait_state(http, rid, {"completed", "failed"})
        assert done["state"] == "completed"
        again = http.get(f"/v1/requests/{rid}/activation")
        assert again.status_code == 409 and "used" in again.json()["message"]
        reused = httpx.post(
            f"{stack.emulator.url}/emulator/phone/install",
            json={"activation_code": act["qr_payload"]},
            timeout=20,
        )
        assert reused.status_code >= 400


def test_bad_input_is_a_clear_4xx_and_changes_nothing(stack: DemoStack) -> None:
    engine = sa.create_engine(stack.settings.effective_database_url)
    with engine.connect() as conn:
        before = conn.execute(
            sa.select(sa.func.count()).select_from(orm.replacement_request)
        ).scalar()
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        cases = [
            ({"msisdn": "not a number", "reason": "lost"}, 422, "INVALID_INPUT"),
            ({"msisdn": "+4520000000", "reason": "bored"}, 422, "INVALID_INPUT"),
            (
                {"msisdn": stack.data.lines[0].msisdn, "reason": "lost", "extra": 1},
                422,
                "INVALID_INPUT",
            ),
        ]
        for body, status, code in cases:
            resp = http.post("/v1/requests", json=body)
            assert resp.status_code == status, (body, resp.text)
            assert resp.json()["code"] == code
            assert resp.json()["message"]
        unknown = {"msisdn": "+4529999991", "reason": "lost"}
        # An unknown number: the BSS is told; an anonymous caller is not (finding 15).
        told = http.post("/v1/requests", json=unknown, headers=stack.client_headers)
        assert (told.status_code, told.json()["code"]) == (404, "LINE_NOT_FOUND")
        assert http.post("/v1/requests", json=unknown).status_code == 202
        missing = http.get("/v1/requests/nope", headers=stack.client_headers)
        assert missing.status_code == 404 and missing.json()["code"] == "REQUEST_NOT_FOUND"
        secret_otp = "918273"
        bad = http.post("/v1/requests/nope/verification", json={"otp": secret_otp, "pin": "12x"})
        assert secret_otp not in bad.text
    with engine.connect() as conn:
        after = conn.execute(
            sa.select(sa.func.count()).select_from(orm.replacement_request)
        ).scalar()
    engine.dispose()
    assert after == before


def test_callbacks_from_unknown_callers_are_refused(stack: DemoStack) -> None:
    body = {
        "header": {"functionRequesterIdentifier": "smdp-emulator", "functionCallIdentifier": "x1"},
        "iccid": stack.data.stock["nordlys-dk"][0],
        "profileType": "default",
        "timestamp": "2026-01-01T00:00:00Z",
        "notificationPointId": 4,
        "notificationPointStatus": {"status": "Executed-Success"},
    }
    url = f"{stack.api.url}/gsma/rsp2/es2plus/handleDownloadProgressInfo"
    headers = {"X-Admin-Protocol": "gsma/rsp/v2.5.0"}
    assert httpx.post(url, json=body, headers=headers).status_code == 401
    wrong = httpx.post(url, json=body, headers={**headers, "Authorization": "Bearer guess"})
    assert wrong.status_code == 401


def test_health_ready_metrics_and_openapi(stack: DemoStack) -> None:
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json() == {"status": "ready"}
        http.get("/v1/requests", headers=stack.client_headers)
        metrics = http.get("/metrics").text
        assert (
            'resim_http_requests_total{method="GET",route="/v1/requests",status="200"}' in metrics
        )
        line = next(ln for ln in stack.data.lines if ln.pin is None)
        http.post("/v1/requests", json={"msisdn": line.msisdn, "reason": "damaged"})
        metrics = http.get("/metrics").text
        assert 'resim_requests{state="requested"} 1.0' in metrics
        assert 'resim_jobs{kind="request.expire_unverified",state="pending"} 1.0' in metrics
        spec = http.get("/openapi.json").json()
        assert "/v1/requests/{request_id}/verification" in spec["paths"]
