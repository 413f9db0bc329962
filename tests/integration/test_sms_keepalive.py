"""AsyncHttpSmsGateway on KeepAlivePost (h11 on asyncio streams) against raw servers:
the request httpx would send, reused connections, servers that close, chunked and
slow replies, and httpx kept where a proxy is configured."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest
from pydantic import SecretStr

from resim.adapters.sms.http import AsyncHttpSmsGateway
from resim.errors import ExternalError
from resim.services.ports import OutgoingSms

pytestmark = pytest.mark.integration

OK = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Reply = Callable[[int, bytes, bytes], Awaitable[bytes | None]]  # (n, head, body) -> reply


def sms(n: int = 1) -> OutgoingSms:
    return OutgoingSms(id=f"job-{n}", to="+4520000001", text='Nordlys: ny SIM · 你好 "q"')


async def serve(
    reply: Reply,
) -> tuple[asyncio.AbstractServer, list[tuple[bytes, bytes]], list[int]]:
    """A server that reads requests (sized bodies) and writes ``reply``'s bytes;
    None closes the connection without a reply. Returns the requests seen and
    the connection number of each."""
    seen: list[tuple[bytes, bytes]] = []
    conns: list[int] = []
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        me = count
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                seen.append((head, body))
                conns.append(me)
                out = await reply(len(seen), head, body)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen, conns


def url(server: asyncio.AbstractServer) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/messages?x=1"


async def ok(n: int, head: bytes, body: bytes) -> bytes | None:
    return OK


class TestTheRequest:
    def test_it_is_the_request_httpx_sends_and_connections_are_reused(self) -> None:
        async def go() -> tuple[list[tuple[bytes, bytes]], list[int], bytes]:
            server, seen, conns = await serve(ok)
            gw = AsyncHttpSmsGateway(url(server), token=SecretStr("t0k"), sender="Nordlys Ø")
            for n in range(3):
                await gw.send(sms(n))
            await gw.aclose()
            server.close()
            expected = httpx.Request(
                "POST",
                "http://x/",
                json={
                    "id": "job-0",
                    "to": "+4520000001",
                    "text": sms().text,
                    "sender": "Nordlys Ø",
                },
            ).content
            return seen, conns, expected

        seen, conns, expected = asyncio.run(go())
        head, body = seen[0]
        assert body == expected
        assert json.loads(body)["sender"] == "Nordlys Ø"
        assert head.startswith(b"POST /v1/messages?x=1 HTTP/1.1\r\n")
        lines = {line.split(b":")[0].lower(): line for line in head.split(b"\r\n")[1:] if line}
        assert lines[b"authorization"] == b"Authorization: Bearer t0k"
        assert lines[b"content-type"] == b"Content-Type: application/json"
        assert lines[b"accept"] == b"Accept: application/json"
        assert lines[b"host"].startswith(b"Host: 127.0.0.1:")
        assert conns == [1, 1, 1]  # one kept-alive connection


class TestServersThatClose:
    def test_a_kept_connection_closed_by_the_server_is_replaced_once(self) -> None:
        async def hang_up_on_the_second(n: int, head: bytes, body: bytes) -> bytes | None:
            return None if n == 2 else OK

        async def go() -> tuple[list[int], list[bytes]]:
            server, seen, conns = await serve(hang_up_on_the_second)
            gw = AsyncHttpSmsGateway(url(server))
            await gw.send(sms(1))
            await gw.send(sms(2))  # the kept connection dies unanswered: sent again on a new one
            await gw.aclose()
            server.close()
            return conns, [json.loads(body)["id"] for _head, body in seen]

        conns, ids = asyncio.run(go())
        assert conns == [1, 1, 2]
        assert ids == ["job-1", "job-2", "job-2"]  # the same id: the gateway drops a repeat

    def test_an_idle_connection_already_closed_is_not_used(self) -> None:
        async def go() -> list[int]:
            server, _seen, conns = await serve(ok)
            gw = AsyncHttpSmsGateway(url(server))
            await gw.send(sms(1))
            assert gw._lean is not None
            for conn, _since in gw._lean._idle:
                conn.writer.transport.abort()
            await gw.send(sms(2))
            await gw.aclose()
            server.close()
            return conns

        assert asyncio.run(go()) == [1, 2]

    def test_connection_close_and_a_chunked_reply_are_honoured(self) -> None:
        chunked = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
        )

        async def reply(n: int, head: bytes, body: bytes) -> bytes | None:
            return chunked

        async def go() -> list[int]:
            server, _seen, conns = await serve(reply)
            gw = AsyncHttpSmsGateway(url(server))
            await gw.send(sms(1))
            await gw.send(sms(2))
            await gw.aclose()
            server.close()
            return conns

        assert asyncio.run(go()) == [1, 2]  # not reused after "Connection: close"

    def test_a_server_that_hangs_up_without_a_reply_is_retryable(self) -> None:
        async def hang_up(n: int, head: bytes, body: bytes) -> bytes | None:
            return None

        async def go() -> ExternalError:
            server, _seen, _conns = await serve(hang_up)
            gw = AsyncHttpSmsGateway(url(server))
            with pytest.raises(ExternalError) as info:
                await gw.send(sms())
            await gw.aclose()
            server.close()
            return info.value

        error = asyncio.run(go())
        assert (error.retryable, error.code) == (True, "SMS_UNAVAILABLE")
        assert "+4520000001" not in error.message


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "retryable", "code"),
        [
            (503, True, "SMS_UNAVAILABLE"),
            (401, True, "SMS_GATEWAY_MISCONFIGURED"),
            (400, False, "SMS_REJECTED"),
        ],
    )
    def test_statuses_are_classified_as_before(
        self, status: int, retryable: bool, code: str
    ) -> None:
        async def reply(n: int, head: bytes, body: bytes) -> bytes | None:
            return b"HTTP/1.1 %d X\r\nContent-Length: 4\r\n\r\nnope" % status

        async def go() -> ExternalError:
            server, _seen, _conns = await serve(reply)
            gw = AsyncHttpSmsGateway(url(server))
            with pytest.raises(ExternalError) as info:
                await gw.send(sms())
            await gw.aclose()
            server.close()
            return info.value

        error = asyncio.run(go())
        assert (error.retryable, error.code) == (retryable, code)

    def test_a_gateway_that_never_answers_times_out_as_retryable(self) -> None:
        async def never(n: int, head: bytes, body: bytes) -> bytes | None:
            await asyncio.sleep(10)
            return OK

        async def go() -> ExternalError:
            server, _seen, _conns = await serve(never)
            gw = AsyncHttpSmsGateway(url(server), timeout=0.3)
            with pytest.raises(ExternalError) as info:
                await gw.send(sms())
            await gw.aclose()
            server.close()
            return info.value

        error = asyncio.run(go())
        assert (error.retryable, error.code) == (True, "SMS_UNAVAILABLE")
        assert "timed out" in error.message

    def test_a_gateway_that_is_down_is_retryable(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])

        async def go() -> ExternalError:
            gw = AsyncHttpSmsGateway(f"http://127.0.0.1:{port}/messages", timeout=2)
            with pytest.raises(ExternalError) as info:
                await gw.send(sms())
            await gw.aclose()
            return info.value

        error = asyncio.run(go())
        assert (error.retryable, error.code) == (True, "SMS_UNAVAILABLE")


def test_a_configured_proxy_keeps_httpx_which_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = int(s.getsockname()[1])
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def go() -> tuple[bool, ExternalError]:
        server, seen, _conns = await serve(ok)
        gw = AsyncHttpSmsGateway(url(server).replace("127.0.0.1", "localhost"), timeout=2)
        with pytest.raises(ExternalError) as info:
            await gw.send(sms())  # through the (dead) proxy, as httpx does
        await gw.aclose()
        server.close()
        return bool(seen), info.value

    reached, error = asyncio.run(go())
    assert not reached and error.code == "SMS_UNAVAILABLE"
