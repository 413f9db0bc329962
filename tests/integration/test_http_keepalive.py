"""KeepAliveClient (h11 on asyncio streams) against raw servers on loopback: kept
connections, servers that close, bounded replies, timeouts, malformed replies,
and the httpx exceptions each failure becomes (mutual TLS: test_http_keepalive_tls)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable

import httpx
import pytest

from resim.adapters.http_keepalive import KeepAliveClient, ReplyTooLarge

pytestmark = pytest.mark.integration

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}"
Reply = Callable[[int, bytes, bytes], Awaitable[bytes | None]]  # (n, head, body) -> reply


class Server:
    """Reads requests (sized bodies), writes ``reply``'s bytes; None hangs up.
    Records each request and the number of the connection it came on."""

    def __init__(self, reply: Reply, *, hang_up_after_reply: bool = False) -> None:
        self.reply = reply
        self.hang_up_after_reply = hang_up_after_reply
        self.seen: list[tuple[bytes, bytes]] = []
        self.conns: list[int] = []
        self.peers: list[object] = []  # the client certificate of each connection
        self._count = 0

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count += 1
        me = self._count
        peer = writer.get_extra_info("ssl_object")
        self.peers.append(peer.getpeercert() if peer is not None else None)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                self.seen.append((head, body))
                self.conns.append(me)
                out = await self.reply(len(self.seen), head, body)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if self.hang_up_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # the test's loop ends with the connection open
            pass
        writer.close()

    def close(self) -> None:
        self.server.close()


def replying(*replies: bytes | None) -> Reply:
    """The n-th request gets replies[n-1] (the last one repeats)."""

    async def reply(n: int, head: bytes, body: bytes) -> bytes | None:
        return replies[min(n, len(replies)) - 1]

    return reply


async def post(client: KeepAliveClient, body: bytes = b'{"q":1}') -> object:
    return await client.request(b"POST", b"/x?y=1", [(b"Content-Type", b"application/json")], body)


class TestKeptConnections:
    def test_replies_come_back_whole_on_one_reused_connection(self) -> None:
        async def go() -> tuple[list[object], Server]:
            server = Server(replying(OK))
            client = KeepAliveClient(
                await server.start(), timeout=2, headers=[(b"User-Agent", b"t")]
            )
            replies = [await post(client) for _ in range(3)]
            await client.aclose()
            server.close()
            return replies, server

        replies, server = asyncio.run(go())
        assert server.conns == [1, 1, 1]
        reply = replies[0]
        assert (reply.status_code, reply.content) == (200, b"{}")  # type: ignore[attr-defined]
        assert reply.headers["x-a"] == "1, 2"  # type: ignore[attr-defined]
        head, body = server.seen[0]
        assert body == b'{"q":1}'
        assert head.startswith(b"POST /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:")
        assert (
            b"\r\nUser-Agent: t\r\nContent-Type: application/json\r\nContent-Length: 7\r\n" in head
        )

    def test_reused_request_heads_carry_each_body_length(self) -> None:
        bodies = [b"a", b"bb", b"c", b"", b"dddd", b"ee"]

        async def go() -> list[bytes]:
            server = Server(replying(OK))
            client = KeepAliveClient(await server.start(), timeout=2)
            for body in bodies:
                await client.request(b"POST", b"/x", [], body)
            await client.request(b"POST", b"/x", [(b"X-Own", b"1")], b"ff")
            await client.aclose()
            server.close()
            return [body for _head, body in server.seen]

        assert asyncio.run(go()) == [*bodies, b"ff"]

    def test_an_idle_connection_the_server_closed_is_not_used(self) -> None:
        async def go() -> list[int]:
            server = Server(replying(OK, OK))
            client = KeepAliveClient(await server.start(), timeout=2)
            await post(client)
            for conn, _since in client._idle:  # the server's end of stream arrives
                conn.writer.transport.abort()
            await post(client)
            await client.aclose()
            server.close()
            return server.conns

        assert asyncio.run(go()) == [1, 2]

    def test_a_server_that_closes_an_idle_connection_gets_a_fresh_one(self) -> None:
        async def go() -> tuple[list[int], list[int]]:
            server = Server(replying(OK), hang_up_after_reply=True)
            client = KeepAliveClient(await server.start(), timeout=2)
            statuses = [(await post(client)).status_code]  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)  # the server's end of stream arrives while idle
            statuses.append((await post(client)).status_code)  # type: ignore[attr-defined]
            await client.aclose()
            server.close()
            return statuses, server.conns

        statuses, conns = asyncio.run(go())
        assert (statuses, conns) == ([200, 200], [1, 2])

    def test_a_connection_idle_past_keepalive_is_dropped(self) -> None:
        async def go() -> list[int]:
            server = Server(replying(OK))
            client = KeepAliveClient(await server.start(), timeout=2, keepalive_seconds=0.05)
            await post(client)
            await asyncio.sleep(0.1)
            await post(client)
            await client.aclose()
            server.close()
            return server.conns

        assert asyncio.run(go()) == [1, 2]

    @pytest.mark.parametrize(("resend", "conns"), [(False, [1, 1]), (True, [1, 1, 2])])
    def test_a_kept_connection_dying_unanswered_is_resent_only_when_asked(
        self, resend: bool, conns: list[int]
    ) -> None:
        async def go() -> tuple[BaseException | None, list[int]]:
            server = Server(replying(OK, None, OK))
            client = KeepAliveClient(await server.start(), timeout=2, resend_unanswered=resend)
            await post(client)
            error: BaseException | None = None
            try:
                await post(client)
            except httpx.HTTPError as exc:
                error = exc
            await client.aclose()
            server.close()
            return error, server.conns

        error, seen = asyncio.run(go())
        assert seen == conns
        assert (error is None) is resend
        if error is not None:  # as httpx: never sent twice
            assert isinstance(error, httpx.RemoteProtocolError)


class TestBadReplies:
    @pytest.mark.parametrize(
        "reply",
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789a",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"6\r\n012345\r\n6\r\n6789ab\r\n0\r\n\r\n",
        ],
        ids=["sized", "chunked"],
    )
    def test_a_reply_over_the_limit_is_refused_and_its_connection_dropped(
        self, reply: bytes
    ) -> None:
        async def go() -> tuple[ReplyTooLarge, int, list[int]]:
            server = Server(replying(reply, OK))
            client = KeepAliveClient(await server.start(), timeout=2, max_reply_bytes=10)
            with pytest.raises(ReplyTooLarge, match="over 10 bytes") as info:
                await post(client)
            status = (await client.request(b"GET", b"/", [], b"")).status_code
            await client.aclose()
            server.close()
            return info.value, status, server.conns

        error, status, conns = asyncio.run(go())
        assert isinstance(error, httpx.TransportError)  # callers map it as before
        assert (status, conns) == (200, [1, 2])

    def test_a_gzip_reply_is_decoded_within_the_limit(self) -> None:
        packed = gzip.compress(b'{"ok":true}')
        big = gzip.compress(b"x" * 5000)

        def gz(data: bytes) -> bytes:
            return b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
                len(data),
                data,
            )

        async def go() -> tuple[bytes, ReplyTooLarge]:
            server = Server(replying(gz(packed), gz(big)))
            client = KeepAliveClient(await server.start(), timeout=2, max_reply_bytes=1000)
            content = (await post(client)).content  # type: ignore[attr-defined]
            with pytest.raises(ReplyTooLarge) as info:
                await post(client)
            await client.aclose()
            server.close()
            return content, info.value

        content, error = asyncio.run(go())
        assert content == b'{"ok":true}'
        assert "decoded" in str(error)

    @pytest.mark.parametrize(
        ("coding", "pack"),
        [
            ("gzip", gzip.compress),
            ("deflate", zlib.compress),
            ("deflate", lambda data: zlib.compressobj(wbits=-15).compress(data) + b"\x03\x00"),
            ("deflate, gzip", lambda data: gzip.compress(zlib.compress(data))),
            ("br", lambda data: data),  # not decoded by httpx either (no brotli here)
        ],
    )
    def test_encoded_replies_read_as_httpx_reads_them(
        self, coding: str, pack: Callable[[bytes], bytes]
    ) -> None:
        packed = pack(b'{"ok":true}')
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n" % (
            coding.encode(),
            len(packed),
        )

        async def go() -> bytes:
            server = Server(replying(head + packed))
            client = KeepAliveClient(await server.start(), timeout=2)
            content = (await post(client)).content  # type: ignore[attr-defined]
            await client.aclose()
            server.close()
            return content

        expected = httpx.Response(200, headers={"Content-Encoding": coding}, content=packed)
        assert asyncio.run(go()) == expected.read()

    @pytest.mark.parametrize(
        "reply",
        [
            b"HTTP/1.1 two hundred\r\n\r\n",
            b"SMTP ready\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012",  # then hangs up
        ],
        ids=["status", "not-http", "cut-short"],
    )
    def test_a_malformed_or_cut_reply_is_a_remote_protocol_error(self, reply: bytes) -> None:
        async def go() -> httpx.HTTPError:
            server = Server(replying(reply), hang_up_after_reply=True)
            client = KeepAliveClient(await server.start(), timeout=2)
            with pytest.raises(httpx.HTTPError) as info:
                await post(client)
            await client.aclose()
            server.close()
            return info.value

        error = asyncio.run(go())
        assert isinstance(error, httpx.RemoteProtocolError)
        assert not isinstance(error, ReplyTooLarge)


class TestTimeouts:
    def test_a_server_that_never_answers_is_a_read_timeout(self) -> None:
        async def never(n: int, head: bytes, body: bytes) -> bytes | None:
            await asyncio.sleep(10)
            return OK

        async def go() -> tuple[httpx.HTTPError, float]:
            server = Server(never)
            client = KeepAliveClient(await server.start(), timeout=0.2)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(httpx.ReadTimeout) as info:
                await post(client)
            took = loop.time() - started
            await client.aclose()
            server.close()
            return info.value, took

        _error, took = asyncio.run(go())
        assert 0.15 < took < 2

    def test_waiting_for_a_free_connection_is_bounded_too(self) -> None:
        async def slow(n: int, head: bytes, body: bytes) -> bytes | None:
            await asyncio.sleep(0.5)
            return OK

        async def go() -> list[object]:
            server = Server(slow)
            client = KeepAliveClient(await server.start(), timeout=0.3, max_connections=1)
            got = await asyncio.gather(post(client), post(client), return_exceptions=True)
            await client.aclose()
            server.close()
            return got

        got = asyncio.run(go())
        assert sorted(type(g).__name__ for g in got) == ["PoolTimeout", "ReadTimeout"]

    def test_nothing_listening_is_a_connect_error(self, unused_port: int) -> None:
        async def go() -> None:
            client = KeepAliveClient(f"http://127.0.0.1:{unused_port}", timeout=2)
            with pytest.raises(httpx.ConnectError):
                await post(client)

        asyncio.run(go())


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
