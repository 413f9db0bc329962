"""A hand-written SGP.22 ES2+ client (plain httpx and JSON dicts) against the emulator.

Nothing from resim's client or wire models is used on the sending side: this is
what any third-party ES2+ client would put on the wire.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from resim.emulator.app import EmulatorConfig
from resim.emulator.server import EmulatorThread

pytestmark = pytest.mark.integration

HEADERS = {"Content-Type": "application/json", "X-Admin-Protocol": "gsma/rsp/v2.2.0"}
EID = "89049032123451234512345678901235"


@pytest.fixture(scope="module")
def smdp() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorConfig(allowed_requesters=("op-raw",))) as server:
        yield server


@pytest.fixture
def http(smdp: EmulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=smdp.url, timeout=5.0) as client:
        yield client


def header(requester: str = "op-raw") -> dict[str, str]:
    return {"functionRequesterIdentifier": requester, "functionCallIdentifier": uuid.uuid4().hex}


def call(http: httpx.Client, function: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = http.post(f"/gsma/rsp2/es2plus/{function}", json=body, headers=HEADERS)
    assert resp.status_code == 200
    assert resp.headers["X-Admin-Protocol"].startswith("gsma/rsp/v2.")
    data: dict[str, Any] = resp.json()
    return data


def status(data: dict[str, Any]) -> tuple[str, str | None, str | None]:
    fes = data["header"]["functionExecutionStatus"]
    code = fes.get("statusCodeData") or {}
    return fes["status"], code.get("subjectCode"), code.get("reasonCode")


def stock(smdp: EmulatorThread, n: int = 1) -> tuple[str, list[str]]:
    profile_type = f"raw-{uuid.uuid4().hex[:6]}"
    return profile_type, smdp.core.add_generated_stock(profile_type, n)


class TestSgp22Flow:
    def test_full_order_with_padded_iccids_and_unknown_fields(
        self, smdp: EmulatorThread, http: httpx.Client
    ) -> None:
        profile_type, _ = stock(smdp)
        data = call(
            http,
            "downloadOrder",
            {"header": header(), "profileType": profile_type, "eid": EID, "vendorX": {"a": 1}},
        )
        assert status(data) == ("Executed-Success", None, None)
        padded = data["iccid"]
        assert len(padded) == 20 and padded.endswith("F")

        data = call(
            http,
            "confirmOrder",
            {"header": header(), "iccid": padded, "eid": EID, "releaseFlag": False,
             "confirmationCode": "8642", "smdsAddress": "", "futureField": True},
        )  # fmt: skip
        assert status(data)[0] == "Executed-Success"
        assert data["smdpAddress"] == "smdp.resim.test" and data["eid"] == EID
        matching_id = data["matchingId"]

        data = call(http, "releaseProfile", {"header": header(), "iccid": padded.lower()})
        assert status(data)[0] == "Executed-Success"
        view = smdp.core.profile(padded)
        assert (view.state.value, view.matching_id) == ("Released", matching_id)

    def test_unpadded_iccid_and_absent_optionals_are_fine(
        self, smdp: EmulatorThread, http: httpx.Client
    ) -> None:
        _, [iccid] = stock(smdp)
        assert status(call(http, "downloadOrder", {"header": header(), "iccid": iccid}))[0] == (
            "Executed-Success"
        )
        data = call(
            http,
            "cancelOrder",
            {"header": header(), "iccid": iccid, "finalProfileStatusIndicator": "Unavailable"},
        )
        assert status(data)[0] == "Executed-Success"
        assert smdp.core.profile(iccid).state.value == "Unavailable"

    def test_a_request_without_x_admin_protocol_is_still_served(
        self, smdp: EmulatorThread, http: httpx.Client
    ) -> None:
        _, [iccid] = stock(smdp)
        resp = http.post(
            "/gsma/rsp2/es2plus/downloadOrder", json={"header": header(), "iccid": iccid}
        )
        assert resp.status_code == 200 and resp.json()["iccid"] == iccid + "F"


class TestSgp22Errors:
    def test_unknown_requester_is_1_1_1_1(self, smdp: EmulatorThread, http: httpx.Client) -> None:
        _, [iccid] = stock(smdp)
        data = call(http, "downloadOrder", {"header": header("stranger"), "iccid": iccid})
        assert status(data) == ("Failed", "1.1", "1.1")
        assert smdp.core.profile(iccid).state.value == "Available"
        assert smdp.core.calls()[-1].requester == "stranger"

    @pytest.mark.parametrize(
        ("function", "body", "expected", "field"),
        [
            ("releaseProfile", {}, ("Failed", "1.6", "2.2"), "header"),
            ("releaseProfile", {"header": {"functionRequesterIdentifier": "op-raw"}},
             ("Failed", "1.6", "2.2"), "header.functionCallIdentifier"),
            ("releaseProfile", {"header": "x"}, ("Failed", "1.6", "2.1"), "header"),
            ("confirmOrder", {"iccid": "89"}, ("Failed", "1.6", "2.2"), "releaseFlag"),
            ("confirmOrder", {"iccid": "89", "releaseFlag": "maybe"}, ("Failed", "1.6", "2.1"),
             "releaseFlag"),
            ("cancelOrder", {"iccid": "89", "finalProfileStatusIndicator": "Gone"},
             ("Failed", "1.6", "2.1"), "finalProfileStatusIndicator"),
            ("downloadOrder", {}, ("Failed", "1.6", "2.2"), None),
            ("downloadOrder", {"iccid": "not-an-iccid"}, ("Failed", "1.6", "2.1"), "iccid"),
            ("downloadOrder", {"profileType": "x", "eid": "123"}, ("Failed", "1.6", "2.1"), "eid"),
        ],
    )  # fmt: skip
    def test_missing_and_invalid_fields(
        self,
        http: httpx.Client,
        function: str,
        body: dict[str, Any],
        expected: tuple[str, str, str],
        field: str | None,
    ) -> None:
        if "header" not in body and field != "header":
            body = {"header": header(), **body}
        data = call(http, function, body)
        assert status(data) == expected
        got_field = data["header"]["functionExecutionStatus"]["statusCodeData"].get(
            "subjectIdentifier"
        )
        assert got_field == field

    def test_a_body_that_is_not_json_is_1_6_2_1(self, http: httpx.Client) -> None:
        resp = http.post("/gsma/rsp2/es2plus/downloadOrder", content=b"<xml/>", headers=HEADERS)
        assert resp.status_code == 200
        assert status(resp.json()) == ("Failed", "1.6", "2.1")

    def test_business_errors_carry_sgp22_codes(
        self, smdp: EmulatorThread, http: httpx.Client
    ) -> None:
        _, [iccid] = stock(smdp)
        data = call(http, "releaseProfile", {"header": header(), "iccid": iccid + "F"})
        assert status(data) == ("Failed", "8.2.1", "3.5")
        data = call(http, "downloadOrder", {"header": header(), "profileType": "none-such"})
        assert status(data) == ("Failed", "8.2.5", "3.9")


class TestAdmin:
    def test_stock_profiles_calls_and_health(self, http: httpx.Client) -> None:
        profile_type = f"adm-{uuid.uuid4().hex[:6]}"
        resp = http.post("/emulator/stock", json={"profile_type": profile_type, "count": 2})
        assert resp.status_code == 200
        iccids = resp.json()["iccids"]
        call(http, "downloadOrder", {"header": header(), "iccid": iccids[0]})
        call(
            http,
            "confirmOrder",
            {"header": header(), "iccid": iccids[0], "releaseFlag": True,
             "confirmationCode": "SECRET-CC-99"},
        )  # fmt: skip
        resp = http.get("/emulator/profiles", params={"profile_type": profile_type})
        states = {p["iccid"]: p["state"] for p in resp.json()}
        assert states == {iccids[0]: "Released", iccids[1]: "Available"}
        assert "SECRET-CC-99" not in resp.text
        calls = http.get("/emulator/calls", params={"function": "confirmOrder"}).json()
        assert calls[-1]["iccid"] == iccids[0] and calls[-1]["outcome"] == "Executed-Success"
        assert "SECRET-CC-99" not in str(calls)
        assert http.get("/emulator/health").json()["status"] == "ok"

    @pytest.mark.parametrize(
        "body",
        [{"profile_type": "x"}, {"profile_type": "x", "iccids": ["1234"]},
         {"profile_type": "x", "count": 1, "iccids": []}],
    )  # fmt: skip
    def test_bad_stock_requests_are_422(self, http: httpx.Client, body: dict[str, Any]) -> None:
        assert http.post("/emulator/stock", json=body).status_code == 422
