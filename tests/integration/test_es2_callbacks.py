"""Phone install on the emulator -> handleDownloadProgressInfo callbacks over loopback
HTTP -> the operator's callback router (resim.entrypoints.es2_callback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from resim.adapters.es2.client import HttpEs2Client
from resim.emulator.app import EmulatorConfig
from resim.emulator.server import AppThread, EmulatorThread
from resim.entrypoints.es2_callback import CallbackAuth, build_es2_callback_router
from resim.errors import ExternalError, NotFound, Refused
from resim.services.ports import CallbackPeer, DownloadProgress

pytestmark = pytest.mark.integration

TOKEN = "callback-token-1"
EID = "89049032123451234512345678901235"
CALLBACK = "/gsma/rsp2/es2plus/handleDownloadProgressInfo"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class Operator:
    """The operator side: records what the router handed over; can be told to fail."""

    received: list[DownloadProgress] = field(default_factory=list)
    fail_with: list[Exception] = field(default_factory=list)
    in_event_loop: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, progress: DownloadProgress, _peer: CallbackPeer) -> None:
        with self.lock:
            self.in_event_loop.append(_loop_running())
            if self.fail_with:
                raise self.fail_with.pop(0)
            self.received.append(progress)

    authenticate = CallbackAuth(token=TOKEN, token_requester="smdp-emulator")


@pytest.fixture(scope="module")
def operator_app() -> Iterator[tuple[AppThread, Operator]]:
    operator = Operator()
    app = FastAPI()
    app.include_router(build_es2_callback_router(operator.handle, operator.authenticate))
    with AppThread(app) as server:
        yield server, operator


@pytest.fixture
def operator(operator_app: tuple[AppThread, Operator]) -> Operator:
    op = operator_app[1]
    op.received.clear()
    op.fail_with.clear()
    return op


def emulator_for(operator_url: str, token: str = TOKEN) -> EmulatorThread:
    config = EmulatorConfig(
        callback_url=operator_url, callback_token=token, callback_backoff_s=0.01
    )
    return EmulatorThread(config)


@pytest.fixture(scope="module")
def smdp(operator_app: tuple[AppThread, Operator]) -> Iterator[EmulatorThread]:
    with emulator_for(operator_app[0].url) as server:
        yield server


def released_code(smdp: EmulatorThread, *, eid: str | None = None, code: str | None = None) -> str:
    """Order a profile through real ES2+ and return its activation code text."""
    profile_type = f"cb-{uuid.uuid4().hex[:6]}"
    smdp.core.add_generated_stock(profile_type, 1)
    with HttpEs2Client(smdp.url, "resim", timeout=5.0) as client:
        iccid = client.download_order(
            call_id=uuid.uuid4().hex, profile_type=profile_type, eid=eid
        ).iccid
        out = client.confirm_order(
            call_id=uuid.uuid4().hex, iccid=iccid, release_flag=True, confirmation_code=code
        )
    return f"LPA:1${out.smdp_address}${out.matching_id}"


def install(smdp: EmulatorThread, **body: Any) -> httpx.Response:
    return httpx.post(f"{smdp.url}/emulator/phone/install", json=body, timeout=10.0)


class TestPhoneInstallSendsCallbacks:
    def test_authenticated_callbacks_reach_the_handler_in_order(
        self, smdp: EmulatorThread, operator: Operator
    ) -> None:
        resp = install(smdp, activation_code=released_code(smdp, eid=EID), eid=EID)
        assert resp.status_code == 200, resp.text
        summary = resp.json()
        assert summary["state"] == "Installed"
        assert [
            (c["notificationPointId"], c["httpStatus"], c["delivered"])
            for c in summary["callbacks"]
        ] == [
            (3, 204, True),
            (4, 204, True),
        ]
        assert [(p.notification_point_id, p.status) for p in operator.received] == [
            (3, "Executed-Success"),
            (4, "Executed-Success"),
        ]
        first = operator.received[0]
        assert first.iccid == summary["iccid"] and len(first.iccid) == 19  # F pad stripped
        assert (first.eid, first.smdp_id) == (EID, "smdp-emulator")
        assert first.timestamp.tzinfo is not None
        assert first.timestamp <= dt.datetime.now(dt.UTC)
        # The route is a sync def: handle() runs in the thread pool, never on the loop.
        assert operator.in_event_loop and not any(operator.in_event_loop)

    def test_a_failed_install_is_reported_as_failed_with_codes(
        self, smdp: EmulatorThread, operator: Operator
    ) -> None:
        resp = install(smdp, activation_code=released_code(smdp), fail=True)
        assert resp.json()["state"] == "Error"
        last = operator.received[-1]
        assert (last.notification_point_id, last.status) == (4, "Failed")
        assert (last.subject_code, last.reason_code) == ("8.1", "4.2")

    def test_a_transient_operator_failure_is_retried(
        self, smdp: EmulatorThread, operator: Operator
    ) -> None:
        operator.fail_with.append(ExternalError("db down", retryable=True))
        callbacks = install(smdp, activation_code=released_code(smdp)).json()["callbacks"]
        assert (callbacks[0]["attempts"], callbacks[0]["delivered"]) == (2, True)
        assert [p.notification_point_id for p in operator.received] == [3, 4]

    def test_an_unknown_iccid_at_the_operator_is_a_refusal_not_a_retry(
        self, smdp: EmulatorThread, operator: Operator
    ) -> None:
        operator.fail_with.extend([NotFound("no such ICCID"), Refused("nope")])
        callbacks = install(smdp, activation_code=released_code(smdp)).json()["callbacks"]
        assert [(c["httpStatus"], c["refused"], c["attempts"]) for c in callbacks] == [
            (200, "8.2.1/3.9", 1),
            (200, "1.6/2.1", 1),
        ]

    def test_a_wrong_token_is_refused_and_the_handler_never_runs(
        self, operator_app: tuple[AppThread, Operator], operator: Operator
    ) -> None:
        with emulator_for(operator_app[0].url, token="stolen") as other:
            callbacks = install(other, activation_code=released_code(other)).json()["callbacks"]
        assert [(c["httpStatus"], c["delivered"], c["refused"]) for c in callbacks] == [
            (401, False, "1.1/1.1"),
            (401, False, "1.1/1.1"),
        ]
        assert operator.received == []


class TestActivationCodeRefusals:
    def test_a_used_code_says_used(self, smdp: EmulatorThread, operator: Operator) -> None:
        code = released_code(smdp)
        assert install(smdp, activation_code=code).status_code == 200
        resp = install(smdp, activation_code=code)
        assert resp.status_code == 409
        assert resp.json()["refused"] == "used"

    @pytest.mark.parametrize(
        ("code", "status", "reason"),
        [
            ("LPA:1$smdp.elsewhere.test$ABCDE-FGHIJ", 409, "wrong_smdp"),
            ("LPA:1$smdp.resim.test$NEVER-ISSUED", 409, "unknown_code"),
            ("not an activation code", 422, "invalid_code"),
        ],
    )
    def test_wrong_codes_are_refused_plainly(
        self, smdp: EmulatorThread, code: str, status: int, reason: str
    ) -> None:
        resp = install(smdp, activation_code=code)
        assert (resp.status_code, resp.json()["refused"]) == (status, reason)

    def test_the_confirmation_code_is_needed_when_one_was_set(
        self, smdp: EmulatorThread, operator: Operator
    ) -> None:
        code = released_code(smdp, code="5151")
        assert install(smdp, activation_code=code).json()["refused"] == "confirmation_code_required"
        assert install(smdp, activation_code=code, confirmation_code="5151").status_code == 200


class TestCallbackRouter:
    """The router on its own, with a raw client playing an SM-DP+."""

    def body(self, **changes: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "header": {
                "functionRequesterIdentifier": "smdp-emulator",
                "functionCallIdentifier": "n-1",
            },
            "iccid": "8999001000000000012F",
            "profileType": "std",
            "timestamp": "2025-01-02T03:04:05+01:00",
            "notificationPointId": 3,
            "notificationPointStatus": {"status": "Executed-Success"},
            "vendorExtra": 1,
        }
        base.update(changes)
        return base

    def post(self, url: str, body: object, token: str | None = TOKEN) -> httpx.Response:
        headers = {"X-Admin-Protocol": "gsma/rsp/v2.5.0"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        content = body if isinstance(body, bytes) else None
        return httpx.post(
            url + CALLBACK, json=None if content else body, content=content, headers=headers
        )

    def test_success_is_204_without_a_body(
        self, operator_app: tuple[AppThread, Operator], operator: Operator
    ) -> None:
        resp = self.post(operator_app[0].url, self.body())
        assert (resp.status_code, resp.content) == (204, b"")
        [got] = operator.received
        assert got.iccid == "8999001000000000012"
        assert got.timestamp == dt.datetime(2025, 1, 2, 2, 4, 5, tzinfo=dt.UTC)

    def test_the_204_carries_x_admin_protocol_like_every_es2_answer(
        self, operator_app: tuple[AppThread, Operator], operator: Operator
    ) -> None:
        # SGP.22 6.5.1: one real ES2+ peer rejects an answer without a gsma/rsp/v2. header.
        resp = self.post(operator_app[0].url, self.body())
        assert resp.status_code == 204
        assert resp.headers["X-Admin-Protocol"] == "gsma/rsp/v2.5.0"

    @pytest.mark.parametrize("token", [None, "wrong"])
    def test_unauthenticated_is_401_with_1_1_1_1(
        self, operator_app: tuple[AppThread, Operator], operator: Operator, token: str | None
    ) -> None:
        resp = self.post(operator_app[0].url, self.body(), token=token)
        assert resp.status_code == 401
        data = resp.json()["header"]["functionExecutionStatus"]
        assert (data["status"], data["statusCodeData"]["subjectCode"]) == ("Failed", "1.1")
        assert operator.received == []

    @pytest.mark.parametrize(
        ("body", "reason", "field"),
        [
            ({"notificationPointId": None}, "2.1", "notificationPointId"),
            ({"iccid": "12345"}, "2.1", "iccid"),
            ({"eid": "42"}, "2.1", "eid"),
            ({"notificationPointStatus": {"status": "Perhaps"}}, "2.1",
             "notificationPointStatus.status"),
            ({"profileType": ...}, "2.2", "profileType"),
        ],
    )  # fmt: skip
    def test_bad_bodies_are_es2_failures_on_http_200(
        self,
        operator_app: tuple[AppThread, Operator],
        operator: Operator,
        body: Any,
        reason: str,
        field: str | None,
    ) -> None:
        if isinstance(body, dict):
            full = self.body(**body)
            body = {k: v for k, v in full.items() if v is not ...}
        resp = self.post(operator_app[0].url, body)
        assert resp.status_code == 200
        data = resp.json()["header"]["functionExecutionStatus"]
        code = data["statusCodeData"]
        assert (data["status"], code["subjectCode"], code["reasonCode"]) == (
            "Failed",
            "1.6",
            reason,
        )
        assert code.get("subjectIdentifier") == field
        assert operator.received == []

    def test_an_unreadable_body_cannot_name_its_caller_so_it_is_401(
        self, operator_app: tuple[AppThread, Operator], operator: Operator
    ) -> None:
        # authenticate() gets requester "" and this operator insists on a known id.
        resp = self.post(operator_app[0].url, b"{not json")
        assert resp.status_code == 401
        assert operator.received == []

    def test_an_unexpected_handler_error_is_503_so_the_smdp_retries(
        self, operator_app: tuple[AppThread, Operator], operator: Operator
    ) -> None:
        operator.fail_with.append(RuntimeError("bug"))
        resp = self.post(operator_app[0].url, self.body())
        assert resp.status_code == 503
        assert resp.headers["X-Admin-Protocol"] == "gsma/rsp/v2.5.0"


def test_with_a_token_only_authenticator_an_unreadable_body_is_1_6_2_1() -> None:
    seen: list[DownloadProgress] = []
    app = FastAPI()
    app.include_router(
        build_es2_callback_router(
            lambda progress, _peer: seen.append(progress),
            lambda *, authorization, requester, client_cert: (
                CallbackPeer("anyone", "bearer-token")
                if authorization == f"Bearer {TOKEN}"
                else None
            ),
        )
    )
    with AppThread(app) as server:
        resp = httpx.post(
            server.url + CALLBACK, content=b"[1, 2", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert resp.status_code == 200
    data = resp.json()["header"]["functionExecutionStatus"]["statusCodeData"]
    assert (data["subjectCode"], data["reasonCode"]) == ("1.6", "2.1")
    assert seen == []
