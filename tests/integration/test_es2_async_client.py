"""AsyncHttpEs2Client on the keep-alive client against raw servers on loopback: the
request httpx sends, the same outcomes and logs as on httpx.AsyncClient (driven
through a real ``httpx.AsyncHTTPTransport``), bounded replies and timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from test_http_keepalive import Server

from resim.adapters.es2.client_async import AsyncHttpEs2Client
from resim.adapters.es2.errors import SMDP_UNAVAILABLE
from resim.errors import ExternalError

pytestmark = pytest.mark.integration

ICCID = "8999001000000000012"
V2 = b"X-Admin-Protocol: gsma/rsp/v2.2.0\r\n"


def reply(status: int, body: bytes, extra: bytes = V2) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        status,
        extra,
        len(body),
        body,
    )


def es2(status: str, **fields: Any) -> bytes:
    return json.dumps(
        {"header": {"functionExecutionStatus": {"status": status}}, **fields}
    ).encode()


OK_DOWNLOAD = reply(200, es2("Executed-Success", iccid=ICCID + "F"))
REPLIES = [
    OK_DOWNLOAD,
    reply(200, es2("Executed-Success")),  # no iccid
    reply(503, b"busy"),
    reply(404, b"<html>nope</html>"),
    reply(200, b"{}", extra=b""),  # no X-Admin-Protocol
    reply(200, b"not json"),
    reply(
        200,
        json.dumps(
            {
                "header": {
                    "functionExecutionStatus": {
                        "status": "Failed",
                        "statusCodeData": {"subjectCode": "8.2.1", "reasonCode": "3.9"},
                    }
                }
            }
        ).encode(),
    ),
    reply(429, b""),
]


async def download(client: AsyncHttpEs2Client, n: int) -> object:
    try:
        return await client.download_order(call_id=f"call-{n}", iccid=ICCID, eid=None)
    except ExternalError as exc:
        return (type(exc).__name__, exc.code, exc.retryable, exc.message)


Run = Callable[[AsyncHttpEs2Client], Awaitable[list[object]]]


async def each_reply(client: AsyncHttpEs2Client) -> list[object]:
    return [await download(client, n) for n in range(len(REPLIES))]


def against(
    replies: list[bytes | None], run: Run, *, base: str = "", **options: Any
) -> tuple[list[object], Server, list[dict[str, Any]], bool]:
    async def go() -> tuple[list[object], Server, list[dict[str, Any]], bool]:
        server = Server(_in_turn(replies))
        url = await server.start()
        client = AsyncHttpEs2Client(url + base, "op-1", **{"timeout": 2.0, **options})
        lean = client._lean is not None
        with capture_logs() as logs:
            out = await run(client)
        await client.aclose()
        server.close()
        return out, server, logs, lean

    return asyncio.run(go())


def _in_turn(replies: list[bytes | None]) -> Callable[[int, bytes, bytes], Awaitable[bytes | None]]:
    async def answer(n: int, head: bytes, body: bytes) -> bytes | None:
        return replies[(n - 1) % len(replies)]

    return answer


def without_durations(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k != "duration_ms"} for entry in logs]


class TestSameAsOnHttpx:
    def test_the_request_is_the_one_httpx_sends_without_accept_encoding(self) -> None:
        async def once(client: AsyncHttpEs2Client) -> list[object]:
            return [await download(client, 1), await download(client, 2)]

        _, lean, _, used_lean = against([OK_DOWNLOAD], once, base="/smdp/")
        _, viahttpx, _, used_httpx = against(
            [OK_DOWNLOAD], once, base="/smdp/", transport=httpx.AsyncHTTPTransport()
        )
        assert (used_lean, used_httpx) == (True, False)
        assert lean.conns == [1, 1]  # kept alive
        (lean_head, lean_body), (httpx_head, httpx_body) = lean.seen[0], viahttpx.seen[0]
        assert lean_body == httpx_body
        assert lean_head.startswith(b"POST /smdp/gsma/rsp2/es2plus/downloadOrder HTTP/1.1\r\n")
        assert lean_head.split(b"\r\n", 2)[2] == httpx_head.split(b"\r\n", 2)[2].replace(
            b"Accept-Encoding: gzip, deflate\r\n", b""
        )  # all but the request line and Host (another port)

    def test_every_outcome_and_its_log_are_the_same(self) -> None:
        lean, _, lean_logs, used = against(REPLIES, each_reply)
        viahttpx, _, httpx_logs, _ = against(
            REPLIES, each_reply, transport=httpx.AsyncHTTPTransport()
        )
        assert used
        assert lean == viahttpx
        assert without_durations(lean_logs) == without_durations(httpx_logs)
        assert len({repr(o) for o in lean}) == len(REPLIES)  # each case is a different outcome


class TestFailuresBelowHttp:
    def test_a_reply_over_a_mebibyte_is_a_retryable_transport_error(self) -> None:
        huge = reply(200, b'{"pad":"' + b"x" * (1 << 20) + b'"}')
        out, *_ = against([huge], each_reply)
        assert out[0] == (
            "ExternalError",
            SMDP_UNAVAILABLE,
            True,
            "SM-DP+ unavailable for downloadOrder: transport error (ReplyTooLarge)",
        )

    def test_an_smdp_that_never_answers_times_out_as_configured(self) -> None:
        async def slow(client: AsyncHttpEs2Client) -> list[object]:
            return [await download(client, 1)]

        out, *_ = against([None], slow, timeout=0.2)  # None: the server hangs up
        assert out[0][:3] == ("ExternalError", SMDP_UNAVAILABLE, True)  # type: ignore[index]

        async def go() -> object:
            async def never(n: int, head: bytes, body: bytes) -> bytes | None:
                await asyncio.sleep(5)
                return None

            server = Server(never)
            client = AsyncHttpEs2Client(await server.start(), "op-1", timeout=0.2)
            got = await download(client, 1)
            await client.aclose()
            server.close()
            return got

        got = asyncio.run(go())
        assert got == ("ExternalError", SMDP_UNAVAILABLE, True, _message("no answer within 0.2 s"))


def _message(reason: str) -> str:
    return f"SM-DP+ unavailable for downloadOrder: {reason}"


def test_an_injected_transport_is_used_as_before() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    async def go() -> object:
        client = AsyncHttpEs2Client(
            "https://smdp.example", "op-1", transport=httpx.MockTransport(handler)
        )
        got = await download(client, 1)
        await client.aclose()
        return got

    assert asyncio.run(go())[:2] == ("ExternalError", SMDP_UNAVAILABLE)  # type: ignore[index]
    assert [r.url.path for r in seen] == ["/gsma/rsp2/es2plus/downloadOrder"]
