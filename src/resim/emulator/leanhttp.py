"""A small HTTP/1.1 client for test tooling: keep-alive connections, little CPU.

Used by the bench's driver (thousands of customers and phones) and the
emulator's ES2+ callbacks over plain HTTP. With httpx (its request and response
models, cookies, h11 and anyio) the client side alone cost several
milliseconds of CPU per replacement in the bench's process and the emulator,
which share the two cores with the system under test. This client does what
they need and nothing more: ``GET`` and ``POST`` of small JSON bodies over plain
HTTP/1.1 on loopback, responses with ``Content-Length`` or chunked, a pool of
keep-alive connections per origin.

Contracts:

* at most ``max_connections`` requests in flight per client; more wait;
* an idle connection is reused only within ``keepalive_s`` (shorter than the
  server's keep-alive timeout, uvicorn's 5 s), so a request is never sent on a
  connection the server is closing; no request is ever retried;
* any transport failure or timeout raises :class:`HttpError` (nothing else).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The request failed before a whole response came back (transport or timeout)."""


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter, float]  # + when it went idle


class LeanClient:
    """Requests to one ``http://host:port`` origin (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 64,
        keepalive_s: float = 2.0,
        timeout_s: float = 60.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("LeanClient speaks plain http://host:port only")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._host_header = f"{self._host}:{self._port}".encode()
        self._keepalive = keepalive_s
        self._timeout = timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Conn] = []

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, headers=headers)

    async def post(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.request("POST", path, body=_dumps(json), headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        async with self._slots:
            try:
                return await asyncio.wait_for(
                    self._exchange(method, path, body, headers or {}), self._timeout
                )
            except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as exc:  # fmt: skip
                raise HttpError(f"{method} {path}: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer, _ in idle:
            writer.close()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ internals

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since < self._keepalive and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self._host, self._port)

    async def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        reader, writer = await self._connection()
        keep = False
        try:
            head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
            head += [f"{k}: {v}".encode("latin-1") for k, v in headers.items()]
            if body is not None:
                if not any(k.lower() == "content-type" for k in headers):
                    head.append(b"Content-Type: application/json")
                head.append(b"Content-Length: %d" % len(body))
            writer.write(b"\r\n".join(head) + b"\r\n\r\n" + (body or b""))
            status, content, keep = await _read_response(reader)
            return Response(status, content)
        finally:
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = lines[0].split(" ", 2)
    length: int | None = None
    chunked = False
    keep = version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            keep = value.strip().lower() != "close"
    code = int(status)
    if code in (204, 304) or code < 200:
        return code, b"", keep
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers from these servers
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        content = b"".join(parts)
    elif length is not None:
        content = await reader.readexactly(length)
    else:
        content, keep = await reader.read(), False  # until the server closes
    return code, content, keep


def _dumps(value: Any) -> bytes | None:
    return None if value is None else json.dumps(value, separators=(",", ":")).encode()
