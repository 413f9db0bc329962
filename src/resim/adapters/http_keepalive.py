"""KeepAliveClient: HTTP/1.1 requests to one origin as h11 over asyncio streams,
on kept connections, with the failures ``httpx.AsyncClient`` would raise.

Why not ``httpx.AsyncClient``: for one small JSON request its layers (request
building and merging, auth, cookie and redirect flow, httpcore's pool, anyio
streams) cost 1.5 to 2 ms of CPU; h11 (httpcore's own HTTP/1.1 state machine,
so no new dependency) on asyncio streams costs a fraction of that. h11 does
the protocol (framing, chunked or sized bodies, keep-alive rules); this module
keeps connections, applies the timeouts and maps failures. Used by the SMS
gateway and the ES2+ client on the worker's event loop; both keep
``httpx.AsyncClient`` where it does something this does not (an injected
test transport, a proxy from the environment).

Failures are the httpx exceptions, so callers map them as before::

    no free connection slot within the timeout  -> httpx.PoolTimeout
    DNS, refused, TLS handshake failure         -> httpx.ConnectError (from the
                                                   OSError / ssl.SSLError)
    TCP connect or TLS handshake too slow       -> httpx.ConnectTimeout
    request not written within the timeout      -> httpx.WriteTimeout
    no reply bytes within the timeout           -> httpx.ReadTimeout
    closed (or reset) without a reply           -> httpx.RemoteProtocolError (from the
                                                   OSError / ssl.SSLError if any)
    connection lost during the reply            -> httpx.ReadError
    malformed reply                             -> httpx.RemoteProtocolError
    a reply body over ``max_reply_bytes``       -> ReplyTooLarge (a RemoteProtocolError)

``timeout`` applies to each step (pool wait, TCP connect, TLS handshake, the
write, each read), as a float ``timeout`` does in httpx. A connection is
reused while idle less than ``keepalive_seconds`` (httpx's default 5 s) and
the server has not closed it (its end of stream already seen). With
``resend_unanswered``, a reused connection the server closed before any byte
of a reply is replaced once by a fresh one; only for peers that drop a
repeated request (httpx never resends: leave it off to keep its behaviour).
Use from one event loop.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import h11
import httpx

_READ = 65536
_UNANSWERED = "server disconnected without a reply"
Headers = Sequence[tuple[bytes, bytes]]


class ReplyTooLarge(httpx.RemoteProtocolError):
    """The reply's body is larger than the client accepts (``max_reply_bytes``)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply: ``headers`` by lower-case name (repeated fields joined with
    ", ", as ``httpx.Headers.get`` joins them); ``content`` decoded of a gzip
    or deflate Content-Encoding, empty when the body was not kept."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class _Stale(Exception):
    """The server closed a connection before any byte of a reply (the cause:
    the OSError or ssl.SSLError that said so, if any)."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    def close(self) -> None:
        self.writer.close()


def proxied(url: str) -> bool:
    """Whether the environment names a proxy httpx would consider for ``url``
    (conservatively: any for its scheme, or for all): then keep httpx."""
    proxies = urllib.request.getproxies()
    scheme = url.split(":", 1)[0].lower()
    return bool(proxies.get(scheme) or proxies.get("all"))


class KeepAliveClient:
    """``await request(method, target, headers, body)`` -> :class:`Reply` (module doc).

    ``url`` names the origin (scheme, host, port; its path is :attr:`path`);
    ``tls``: the context for https (default: httpx's default verification),
    set to offer ALPN ``http/1.1`` as httpcore does; ``headers`` go on every
    request after ``Host`` (fixed ones belong here: a request without headers
    of its own reuses its validated head); ``max_connections`` bounds the
    connections open at once (more requests wait, up to ``timeout``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        headers: Headers = (),
        max_connections: int = 100,
        keepalive_seconds: float = 5.0,
        max_reply_bytes: int = 1 << 20,
        resend_unanswered: bool = False,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("a keep-alive client needs an http(s)://host URL")
        if parsed.scheme == "https":
            self._tls: ssl.SSLContext | None = tls or httpx.create_ssl_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        else:
            self._tls = None
        self._host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as httpx connects
        self._port = parsed.port or (443 if self._tls is not None else 80)
        self.path: bytes = parsed.raw_path
        self._headers = [(b"Host", parsed.netloc), *headers]
        self._timeout = timeout
        self._keepalive = keepalive_seconds
        self._max_body = max_reply_bytes
        self._resend = resend_unanswered
        self._max_connections = max_connections
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[tuple[_Connection, float]] = []
        self._heads: dict[tuple[bytes, bytes, int], h11.Request] = {}

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: Headers,
        body: bytes,
        *,
        keep_body: bool = True,
    ) -> Reply:
        """Send one request and return its reply; ``keep_body=False`` reads the
        body and drops it (no size limit then)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        key = (method, target, len(body))
        request = self._heads.get(key) if not headers else None
        if request is None:
            request = h11.Request(
                method=method,
                target=target,
                headers=[*self._headers, *headers, (b"Content-Length", b"%d" % len(body))],
            )
            if not headers:
                self._remember(key, request)
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self._timeout):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection within the timeout") from None
        else:
            await slots.acquire()
        try:
            conn = self._take_idle()
            if conn is not None:
                try:
                    return await self._exchange(conn, request, body, keep_body)
                except _Stale as stale:
                    if not self._resend:
                        raise httpx.RemoteProtocolError(_UNANSWERED) from stale.__cause__
            conn = await self._connect()
            try:
                return await self._exchange(conn, request, body, keep_body)
            except _Stale as stale:
                raise httpx.RemoteProtocolError(_UNANSWERED) from stale.__cause__
        finally:
            slots.release()

    def _remember(self, key: tuple[bytes, bytes, int], request: h11.Request) -> None:
        """Keep a validated request head for reuse (h11 checks every header of
        every new one: about a tenth of a small request's CPU); heads are
        immutable. Callers send few distinct (method, target, length) heads;
        bounded anyway."""
        if len(self._heads) >= 256:
            self._heads.clear()
        self._heads[key] = request

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
        """TCP, then TLS: each within the timeout, as httpcore does."""
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(self._host, self._port, limit=_READ)
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(type(exc).__name__) from exc
        if self._tls is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await writer.start_tls(self._tls, server_hostname=self._host)
            except TimeoutError:
                writer.close()
                raise httpx.ConnectTimeout("TLS handshake timed out") from None
            except (OSError, ssl.SSLError) as exc:  # the ssl error names the cause
                writer.close()
                raise httpx.ConnectError(type(exc).__name__) from exc
        return _Connection(reader, writer)

    async def _exchange(
        self, conn: _Connection, request: h11.Request, body: bytes, keep_body: bool
    ) -> Reply:
        """Send one request on ``conn`` and read its reply; pool or close ``conn``."""
        state = conn.h11
        head: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        replied = False
        writing = True
        try:
            conn.writer.write(
                state.send(request)
                + state.send(h11.Data(data=body))
                + state.send(h11.EndOfMessage())
            )
            async with asyncio.timeout(self._timeout):
                await conn.writer.drain()
            writing = False
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(self._timeout):
                        chunk = await conn.reader.read(_READ)
                    if not chunk and not replied:
                        raise _Stale
                    replied = True
                    state.receive_data(chunk)  # b"": the end of the stream
                elif isinstance(event, h11.Data):
                    if keep_body:
                        size += len(event.data)
                        if size > self._max_body:
                            raise ReplyTooLarge(f"reply body over {self._max_body} bytes")
                        chunks.append(event.data)
                elif isinstance(event, h11.Response):
                    head = event
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the reply ended early")
                # 1xx replies: nothing to keep.
        except _Stale:
            conn.close()
            raise
        except TimeoutError:
            conn.close()
            if writing:
                raise httpx.WriteTimeout("request not sent within the timeout") from None
            raise httpx.ReadTimeout("no reply within the timeout") from None
        except h11.ProtocolError:
            conn.close()
            raise httpx.RemoteProtocolError("malformed reply") from None
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            if not replied:  # httpcore too reads on after a failed write
                raise _Stale from exc
            raise httpx.ReadError(type(exc).__name__) from exc
        except BaseException:  # cancelled or too large: the connection's state is unknown
            conn.close()
            raise
        if head is None:  # unreachable: h11 delivers a Response before EndOfMessage
            conn.close()
            raise httpx.RemoteProtocolError("no status line")
        if state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
            self._idle.append((conn, time.monotonic()))
        else:
            conn.close()  # "Connection: close", or HTTP/1.0
        headers: dict[str, str] = {}
        for raw_name, raw_value in head.headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        content = b"".join(chunks)
        coding = headers.get("content-encoding")
        if content and coding is not None:
            for name in reversed(coding.lower().split(",")):  # the last applied first
                content = self._decode(content, name.strip())
        return Reply(head.status_code, headers, content)

    def _decode(self, content: bytes, coding: str) -> bytes:
        """Undo a gzip or deflate Content-Encoding (sent though not asked for)
        within the size limit; others pass unchanged, as httpx passes them."""
        if coding == "gzip":
            wbits = zlib.MAX_WBITS | 16
        elif coding == "deflate":
            wbits = zlib.MAX_WBITS if content[:1] == b"\x78" else -zlib.MAX_WBITS
        else:
            return content
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(content, self._max_body + 1)
        except zlib.error:
            raise httpx.DecodingError(f"reply body is not valid {coding}") from None
        if len(out) > self._max_body:
            raise ReplyTooLarge(f"decoded reply body over {self._max_body} bytes")
        return out
