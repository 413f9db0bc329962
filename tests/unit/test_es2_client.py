"""HttpEs2Client against httpx.MockTransport: request shape and every error mapping."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from resim.adapters.es2.client import HttpEs2Client
from resim.adapters.es2.errors import Es2StatusError
from resim.errors import ExternalError, InvalidInput

ICCID = "8999001000000000012"
MID = "SECRET-MATCH-ID"
CODE = "771234"
V2 = {"X-Admin-Protocol": "gsma/rsp/v2.2.0"}
OK = {"header": {"functionExecutionStatus": {"status": "Executed-Success"}}}


def failed(subject: str, reason: str, status: str = "Failed", **extra: str) -> dict[str, Any]:
    data = {"subjectCode": subject, "reasonCode": reason, **extra}
    return {"header": {"functionExecutionStatus": {"status": status, "statusCodeData": data}}}


Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> HttpEs2Client:
    return HttpEs2Client(
        "https://smdp.example", "op-1", transport=httpx.MockTransport(handler), timeout=1.0
    )


def answering(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=V2 if headers is None else headers)

    return handler


def confirm(client: HttpEs2Client) -> object:
    return client.confirm_order(
        call_id="c1", iccid=ICCID, release_flag=True, matching_id=MID, confirmation_code=CODE
    )


class TestRequests:
    def test_download_order_posts_es2_json_with_the_padded_iccid(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={**OK, "iccid": ICCID + "F"}, headers=V2)

        with client_for(handler) as client:
            result = client.download_order(call_id="call-7", iccid=ICCID)
        assert result.iccid == ICCID
        [req] = seen
        assert req.url == "https://smdp.example/gsma/rsp2/es2plus/downloadOrder"
        assert req.headers["X-Admin-Protocol"] == "gsma/rsp/v2.5.0"
        assert req.headers["Content-Type"] == "application/json"
        assert json.loads(req.content) == {
            "header": {"functionRequesterIdentifier": "op-1", "functionCallIdentifier": "call-7"},
            "iccid": ICCID + "F",
        }

    def test_confirm_order_reads_matching_id_and_address(self) -> None:
        body = {**OK, "matchingId": "AB-12", "smdpAddress": "smdp.example", "extra": 1}
        with client_for(answering(body)) as client:
            out = client.confirm_order(call_id="c", iccid=ICCID, release_flag=False)
        assert (out.matching_id, out.smdp_address, out.eid) == ("AB-12", "smdp.example", None)

    def test_release_accepts_an_empty_204(self) -> None:
        with client_for(answering(b"", 204, {})) as client:
            client.release_profile(call_id="c", iccid=ICCID)

    def test_bad_arguments_fail_before_any_request(self) -> None:
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200, json=OK, headers=V2)

        with client_for(handler) as client:
            with pytest.raises(InvalidInput):
                client.release_profile(call_id="c", iccid="1234")
            with pytest.raises(InvalidInput):
                client.download_order(call_id="c", profile_type="std", eid="42")
            with pytest.raises(InvalidInput):
                client.download_order(call_id="c")
        assert sent == []

    def test_many_threads_share_one_client(self) -> None:
        with client_for(answering({**OK, "iccid": ICCID})) as client:
            errors: list[BaseException] = []

            def work() -> None:
                try:
                    for n in range(20):
                        client.download_order(call_id=f"c{n}", profile_type="std")
                except BaseException as exc:  # collected for the assert below
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(64)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []


class TestStatusErrors:
    def test_failed_becomes_es2_status_error_with_codes(self) -> None:
        with (
            client_for(answering(failed("8.2.1", "3.9"))) as client,
            pytest.raises(Es2StatusError) as info,
        ):
            client.release_profile(call_id="c", iccid=ICCID)
        err = info.value
        assert (err.code, err.retryable, err.status) == ("ES2_ICCID_UNKNOWN", False, "Failed")
        assert (err.subject_code, err.reason_code) == ("8.2.1", "3.9")

    def test_busy_is_retryable(self) -> None:
        with (
            client_for(answering(failed("1.2", "4.4"))) as client,
            pytest.raises(Es2StatusError) as info,
        ):
            client.release_profile(call_id="c", iccid=ICCID)
        assert (info.value.code, info.value.retryable) == ("ES2_BUSY", True)

    def test_expired_with_an_unlisted_pair_is_permanent(self) -> None:
        with (
            client_for(answering(failed("9.1", "1.1", status="Expired"))) as client,
            pytest.raises(Es2StatusError) as info,
        ):
            client.release_profile(call_id="c", iccid=ICCID)
        assert (info.value.code, info.value.retryable) == ("ES2_EXPIRED", False)

    def test_an_es2_error_body_wins_over_a_4xx_status(self) -> None:
        with (
            client_for(answering(failed("8.2.6", "3.3"), status=400)) as client,
            pytest.raises(Es2StatusError) as info,
        ):
            confirm(client)
        assert info.value.code == "ES2_MATCHING_ID_USED"

    def test_secrets_echoed_by_the_peer_are_redacted(self) -> None:
        body = failed("8.2.6", "3.3", message=f"matchingId {MID} with code {CODE} used")
        with (
            capture_logs() as logs,
            client_for(answering(body)) as client,
            pytest.raises(Es2StatusError) as info,
        ):
            confirm(client)
        text = str(info.value) + repr(vars(info.value)) + repr(logs)
        assert MID not in text and CODE not in text
        assert "***" in (info.value.peer_message or "")
        assert any(entry["event"] == "es2.call.refused" for entry in logs)


class TestUnavailable:
    @pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
    def test_server_errors_and_throttling_are_retryable(self, status: int) -> None:
        with (
            client_for(answering(b"oops", status, {})) as client,
            pytest.raises(ExternalError) as info,
        ):
            confirm(client)
        assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)

    @pytest.mark.parametrize(
        "exc",
        [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("x")],
    )
    def test_transport_failures_are_retryable_and_carry_no_secret(
        self, exc: httpx.HTTPError
    ) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise exc

        with (
            capture_logs() as logs,
            client_for(handler) as client,
            pytest.raises(ExternalError) as info,
        ):
            confirm(client)
        assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)
        text = str(info.value) + repr(logs)
        assert MID not in text and CODE not in text
        assert [e["event"] for e in logs] == ["es2.call.failed"]

    @pytest.mark.parametrize(
        "body",
        [b"<html>gateway</html>", b"[1, 2]", b'{"no": "header"}', b'{"header": {"x": 1}}'],
        ids=["html", "list", "no-header", "bad-header"],
    )
    def test_unparseable_answers_are_retryable(self, body: bytes) -> None:
        with client_for(answering(body)) as client, pytest.raises(ExternalError) as info:
            client.release_profile(call_id="c", iccid=ICCID)
        assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)

    def test_a_success_without_its_mandatory_output_is_retryable(self) -> None:
        with client_for(answering(OK)) as client, pytest.raises(ExternalError) as info:
            client.download_order(call_id="c", profile_type="std")
        assert (info.value.code, info.value.retryable) == ("SMDP_UNAVAILABLE", True)


class TestPermanent:
    @pytest.mark.parametrize("headers", [{}, {"X-Admin-Protocol": "gsma/rsp/v3.0.0"}])
    def test_a_2xx_without_a_v2_admin_protocol_is_a_protocol_mismatch(
        self, headers: dict[str, str]
    ) -> None:
        with (
            client_for(answering(OK, headers=headers)) as client,
            pytest.raises(ExternalError) as info,
        ):
            client.release_profile(call_id="c", iccid=ICCID)
        assert (info.value.code, info.value.retryable) == ("SMDP_PROTOCOL_MISMATCH", False)

    @pytest.mark.parametrize("status", [301, 401, 403, 404])
    def test_other_http_statuses_are_permanent(self, status: int) -> None:
        with (
            client_for(answering(b"no", status, {})) as client,
            pytest.raises(ExternalError) as info,
        ):
            client.release_profile(call_id="c", iccid=ICCID)
        assert (info.value.code, info.value.retryable) == ("SMDP_HTTP_ERROR", False)

    @pytest.mark.parametrize(
        "status_field",
        [{"status": "Failed"}, {"status": "Failed", "statusCodeData": None}],
        ids=["absent", "null"],
    )
    def test_failed_without_status_codes_is_a_permanent_protocol_error(
        self, status_field: dict[str, object]
    ) -> None:
        # SGP.22 6.5.1.2: statusCodeData is mandatory with Failed. A peer that
        # leaves it out will do so again: retrying would only repeat the call.
        body = {"header": {"functionExecutionStatus": status_field}}
        with client_for(answering(body)) as client, pytest.raises(ExternalError) as info:
            client.release_profile(call_id="c", iccid=ICCID)
        assert (info.value.code, info.value.retryable) == ("SMDP_PROTOCOL_ERROR", False)
        assert "Failed" in info.value.message and "statusCodeData" in info.value.message


class TestAnEmptyMatchingId:
    def test_confirm_order_accepts_an_empty_matching_id(self) -> None:
        # SGP.22 4.1: an empty MatchingID is valid; absent is not (it is mandatory).
        body = {**OK, "matchingId": "", "smdpAddress": "smdp.example"}
        with client_for(answering(body)) as client:
            out = client.confirm_order(call_id="c", iccid=ICCID, release_flag=True)
        assert (out.matching_id, out.smdp_address) == ("", "smdp.example")

    def test_an_absent_matching_id_is_still_a_bad_answer(self) -> None:
        with client_for(answering(OK)) as client, pytest.raises(ExternalError):
            client.confirm_order(call_id="c", iccid=ICCID, release_flag=True)
