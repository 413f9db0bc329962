"""KeepAlivePost: the SMS gateway's one request (``POST`` to a fixed URL) as h11
over asyncio streams, on reused connections.

Why not ``httpx.AsyncClient``: for this one small request its layers (request
building and merging, auth and redirect flow, httpcore's pool, anyio streams)
cost about 2 ms of CPU per text; h11 (httpcore's own HTTP/1.1 state machine,
so no new dependency) on asyncio streams costs about 0.3 ms. h11 does the
protocol (framing, chunked or sized bodies, keep-alive rules); this module
only keeps connections and maps failures.

Failures are raised as the httpx exceptions ``httpx.AsyncClient`` would
raise, so the gateway maps them exactly as before::

    connect refused, DNS, TLS handshake   -> httpx.ConnectError
    no connection within the timeout      -> httpx.ConnectTimeout
    no reply bytes within the timeout     -> httpx.ReadTimeout
    connection lost, malformed reply      -> httpx.ReadError / httpx.RemoteProtocolError

``timeout`` applies to each step (connect, each read), as httpx's does. A
connection is reused while idle less than ``keepalive_seconds`` (httpx's
default 5 s) and the server has not closed it; a reused connection that the
server closed before answering is replaced once by a fresh one (the gateway
drops a repeated message id, so sending again cannot duplicate a text).
Reply bodies are read and dropped, never kept. Use from one event loop.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

import h11
import httpx

_READ = 65536


class _Stale(Exception):
    """The server closed the connection before any byte of a reply."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    def close(self) -> None:
        self.writer.close()


class KeepAlivePost:
    """``await post(headers, body)`` -> the reply's status code (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        max_connections: int = 100,
        keepalive_seconds: float = 5.0,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the SMS gateway URL must be http(s)://host/...")
        self._tls = httpx.create_ssl_context() if parsed.scheme == "https" else None
        self._host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as httpx connects
        self._port = parsed.port or (443 if self._tls is not None else 80)
        self._target = parsed.raw_path
        self._netloc = parsed.netloc
        self._timeout = timeout
        self._keepalive = keepalive_seconds
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[tuple[_Connection, float]] = []

    async def post(self, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        request = h11.Request(
            method=b"POST",
            target=self._target,
            headers=[(b"Host", self._netloc), *headers, (b"Content-Length", b"%d" % len(body))],
        )
        async with self._slots:
            conn = self._take_idle()
            if conn is not None:
                try:
                    return await self._exchange(conn, request, body)
                except _Stale:
                    pass  # closed by the server while idle: once more, on a fresh connection
            conn = await self._connect()
            try:
                return await self._exchange(conn, request, body)
            except _Stale:
                raise httpx.RemoteProtocolError("server disconnected without a reply") from None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _since in idle:
            conn.close()

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn, since = self._idle.pop()
            if (
                now - since < self._keepalive
                and not conn.writer.is_closing()
                and not conn.reader.at_eof()
            ):
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._tls,
                    server_hostname=self._host if self._tls is not None else None,
                    limit=_READ,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(type(exc).__name__) from None
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, request: h11.Request, body: bytes) -> int:
        """Send one request on ``conn`` and read its reply; pool or close ``conn``."""
        state = conn.h11
        status: int | None = None
        replied = False
        try:
            conn.writer.write(
                state.send(request)
                + state.send(h11.Data(data=body))
                + state.send(h11.EndOfMessage())
            )
            async with asyncio.timeout(self._timeout):
                await conn.writer.drain()
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(self._timeout):
                        chunk = await conn.reader.read(_READ)
                    if not chunk and not replied:
                        raise _Stale
                    replied = True
                    state.receive_data(chunk)  # b"": the end of the stream
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the reply ended early")
                # 1xx replies and body data: nothing to keep.
        except _Stale:
            conn.close()
            raise
        except TimeoutError:
            conn.close()
            raise httpx.ReadTimeout("no reply within the timeout") from None
        except h11.ProtocolError:
            conn.close()
            raise httpx.RemoteProtocolError("malformed reply") from None
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            if not replied:
                raise _Stale from None
            raise httpx.ReadError(type(exc).__name__) from None
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            conn.close()
            raise
        if status is None:  # unreachable: h11 delivers a Response before EndOfMessage
            conn.close()
            raise httpx.RemoteProtocolError("no status line")
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
            self._idle.append((conn, time.monotonic()))
        else:
            conn.close()  # "Connection: close", or HTTP/1.0
        return status
