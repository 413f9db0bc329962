"""Fault injection through real HTTP: busy, 5xx and timeouts reach HttpEs2Client as
retryable errors; what was or was not executed is visible in the emulator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from resim.adapters.es2.client import HttpEs2Client
from resim.adapters.es2.errors import Es2StatusError
from resim.emulator.app import EmulatorConfig
from resim.emulator.server import EmulatorThread
from resim.errors import ExternalError

pytestmark = pytest.mark.integration

NO_FAULTS: dict[str, Any] = {
    "latency_ms": 0, "jitter_ms": 0, "error_rate": 0, "http5xx_rate": 0, "timeout_rate": 0,
    "timeout_hold_s": 0.6, "timeout_executes": True,
}  # fmt: skip


@pytest.fixture(scope="module")
def smdp() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorConfig(timeout_hold_s=0.6, seed=1)) as server:
        yield server


@pytest.fixture
def admin(smdp: EmulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=smdp.url, timeout=5.0) as client:
        yield client
        client.put("/emulator/faults", json=NO_FAULTS).raise_for_status()


@pytest.fixture
def client(smdp: EmulatorThread) -> Iterator[HttpEs2Client]:
    with HttpEs2Client(smdp.url, "resim", timeout=0.25) as es2:
        yield es2


def set_faults(admin: httpx.Client, **changes: Any) -> None:
    admin.put("/emulator/faults", json={**NO_FAULTS, **changes}).raise_for_status()


def one_profile(smdp: EmulatorThread) -> str:
    return smdp.core.add_generated_stock(f"f-{uuid.uuid4().hex[:6]}", 1)[0]


class TestInjectedFaults:
    def test_busy_is_a_retryable_es2_error_and_nothing_is_executed(
        self, smdp: EmulatorThread, admin: httpx.Client, client: HttpEs2Client
    ) -> None:
        iccid = one_profile(smdp)
        set_faults(admin, error_rate=1.0)
        with pytest.raises(Es2StatusError) as info:
            client.download_order(call_id="busy-1", iccid=iccid)
        assert (info.value.code, info.value.retryable) == ("ES2_BUSY", True)
        assert smdp.core.profile(iccid).state.value == "Available"
        assert smdp.core.calls()[-1].outcome == "fault:busy"

    def test_http_500_is_retryable_unavailable_and_nothing_is_executed(
        self, smdp: EmulatorThread, admin: httpx.Client, client: HttpEs2Client
    ) -> None:
        iccid = one_profile(smdp)
        set_faults(admin, http5xx_rate=1.0)
        with pytest.raises(ExternalError) as info:
            client.download_order(call_id="5xx-1", iccid=iccid)
        assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)
        assert smdp.core.profile(iccid).state.value == "Available"

    def test_a_timeout_is_retryable_and_the_retry_gets_the_executed_answer(
        self, smdp: EmulatorThread, admin: httpx.Client, client: HttpEs2Client
    ) -> None:
        iccid = one_profile(smdp)
        set_faults(admin, timeout_rate=1.0)
        with pytest.raises(ExternalError) as info:
            client.download_order(call_id="slow-1", iccid=iccid)
        assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)
        # The SM-DP+ did execute: the worst case for the caller.
        assert smdp.core.profile(iccid).state.value == "Allocated"
        set_faults(admin)
        assert client.download_order(call_id="slow-1", iccid=iccid).iccid == iccid
        outcomes = [c.outcome for c in smdp.core.calls("downloadOrder") if c.call_id == "slow-1"]
        assert outcomes == ["fault:timeout", "Executed-Success", "replayed"]

    def test_a_timeout_that_does_not_execute_leaves_the_profile_alone(
        self, smdp: EmulatorThread, admin: httpx.Client, client: HttpEs2Client
    ) -> None:
        iccid = one_profile(smdp)
        set_faults(admin, timeout_rate=1.0, timeout_executes=False)
        with pytest.raises(ExternalError):
            client.download_order(call_id="slow-2", iccid=iccid)
        assert smdp.core.profile(iccid).state.value == "Available"

    def test_latency_is_applied_per_call(self, smdp: EmulatorThread, admin: httpx.Client) -> None:
        iccid = one_profile(smdp)
        set_faults(admin, latency_ms=150)
        with HttpEs2Client(smdp.url, "resim", timeout=2.0) as patient:
            started = time.monotonic()
            patient.download_order(call_id=uuid.uuid4().hex, iccid=iccid)
        assert time.monotonic() - started >= 0.14


class TestFaultSettings:
    def test_the_same_seed_gives_the_same_faults(self, admin: httpx.Client) -> None:
        body = {"header": {"functionRequesterIdentifier": "resim"}, "iccid": "x"}

        def run() -> list[str]:
            set_faults(admin, error_rate=0.5, seed=42)
            outcomes = []
            for n in range(12):
                body["header"]["functionCallIdentifier"] = f"seed-{n}"
                data = admin.post("/gsma/rsp2/es2plus/releaseProfile", json=body).json()
                outcomes.append(
                    data["header"]["functionExecutionStatus"]["statusCodeData"]["reasonCode"]
                )
            return outcomes

        first = run()
        assert first == run()
        assert {"4.4", "2.1"} == set(first)

    @pytest.mark.parametrize(
        "body", [{"error_rate": 2}, {"error_rate": 0.6, "timeout_rate": 0.6}, {"bogus": 1}]
    )
    def test_invalid_settings_are_refused(self, admin: httpx.Client, body: dict[str, Any]) -> None:
        assert admin.put("/emulator/faults", json=body).status_code == 422

    def test_current_settings_are_readable(self, admin: httpx.Client) -> None:
        set_faults(admin, latency_ms=5, jitter_ms=2)
        got = admin.get("/emulator/faults").json()
        assert (got["latency_ms"], got["jitter_ms"]) == (5, 2)
