"""Delivery of handleDownloadProgressInfo (SGP.22 5.3.5 / ES2+) to the operator.

Notifications go out in order (point 3, then 4) to
``<callback_url>/gsma/rsp2/es2plus/handleDownloadProgressInfo`` with the
ES2+ headers and ``Authorization: Bearer <token>`` when a token is set; over
HTTPS with a client certificate when one is set (mutual TLS, the standard). Each is retried with the
same functionCallIdentifier (so the operator can deduplicate) after transport
errors, HTTP 5xx, 408 and 429; a 2xx or another 4xx ends its delivery.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from resim.adapters.es2 import wire
from resim.emulator.leanhttp import HttpError, LeanClient
from resim.services.ports import DownloadProgress

_RETRY_HTTP = frozenset({408, 429})


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification; ``refused`` is the operator's ES2+ error pair."""

    notification_point_id: int
    status: str
    delivered: bool
    attempts: int
    http_status: int | None = None
    refused: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "notificationPointId": self.notification_point_id,
            "status": self.status,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "httpStatus": self.http_status,
            "refused": self.refused,
            "error": self.error,
        }


@dataclass(frozen=True)
class CallbackTarget:
    base_url: str
    token: str | None = None
    client_cert: tuple[str, str] | None = None  # (certificate file, key file), PEM
    ca_bundle: str | None = None  # None: the system's trust store
    attempts: int = 3
    timeout_s: float = 5.0
    backoff_s: float = 0.2


@functools.cache
def _tls_context(
    client_cert: tuple[str, str] | None = None, ca_bundle: str | None = None
) -> ssl.SSLContext:
    """One TLS context per set of files for every delivery: building one (and
    loading the CA bundle) per phone install cost about 40 ms of CPU each."""
    context = ssl.create_default_context(cafile=ca_bundle)
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    return context


def _client(
    target: CallbackTarget, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    headers = wire.es2_headers()
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    return httpx.AsyncClient(
        timeout=target.timeout_s,
        headers=headers,
        transport=transport,
        verify=_tls_context(target.client_cert, target.ca_bundle),
        # Idle connections are dropped before the operator's server drops them
        # (uvicorn: 5 s), so a callback rarely meets a closing connection (and is
        # retried like any transport error when it does).
        limits=httpx.Limits(keepalive_expiry=2.0),
    )


def _url(target: CallbackTarget) -> str:
    return target.base_url.rstrip("/") + wire.PATH_PREFIX + wire.HANDLE_DOWNLOAD_PROGRESS_INFO


async def deliver_all(
    notes: list[DownloadProgress],
    target: CallbackTarget,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Delivery]:
    """Send every notification in order over an httpx client of their own; never
    raises for peer failures."""
    url = _url(target)
    async with _client(target, transport) as client:
        return [await _deliver(_httpx_post(client, url), note, target) for note in notes]


class CallbackSender:
    """Delivers notifications to one target like :func:`deliver_all`, over one
    client with keep-alive connections per event loop: a client (and a
    connection) per phone install cost the emulator and the operator's server
    CPU on every install. Plain ``http://`` targets without a client
    certificate go through :class:`~resim.emulator.leanhttp.LeanClient` (httpx
    cost the emulator about as much CPU as everything else it does); HTTPS
    through httpx. A new running loop gets a new client (the old one is left to
    its loop, which is gone)."""

    def __init__(self, target: CallbackTarget) -> None:
        self.target = target
        self._loop: asyncio.AbstractEventLoop | None = None
        self._post: _Post | None = None
        parts = urlsplit(_url(target))
        self._lean = parts.scheme == "http" and target.client_cert is None
        self._path = parts.path

    async def deliver(self, notes: list[DownloadProgress]) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        if self._post is None or self._loop is not loop:
            self._loop, self._post = loop, self._new_post()
        return [await _deliver(self._post, note, self.target) for note in notes]

    def _new_post(self) -> _Post:
        if not self._lean:
            return _httpx_post(_client(self.target), _url(self.target))
        headers = wire.es2_headers()
        if self.target.token:
            headers["Authorization"] = f"Bearer {self.target.token}"
        base = urlsplit(self.target.base_url)
        lean = LeanClient(
            f"http://{base.netloc}", max_connections=256, timeout_s=self.target.timeout_s
        )
        path = self._path

        async def post(body: dict[str, Any]) -> _Answer:
            try:
                return await lean.post(path, json=body, headers=headers)
            except HttpError as exc:
                raise _Unreachable(type(exc.__cause__ or exc).__name__) from exc

        return post


class _Answer(Protocol):
    """What _deliver reads of an HTTP answer (httpx's Response and the lean one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    def json(self) -> Any: ...


class _Unreachable(Exception):
    """No answer came back (transport error or timeout); the name of the error."""


_Post = Callable[[dict[str, Any]], Awaitable[_Answer]]


def _httpx_post(client: httpx.AsyncClient, url: str) -> _Post:
    async def post(body: dict[str, Any]) -> _Answer:
        try:
            return await client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise _Unreachable(type(exc).__name__) from exc

    return post


async def _deliver(post: _Post, note: DownloadProgress, target: CallbackTarget) -> Delivery:
    body = wire.dump(wire.HandleDownloadProgressInfoRequest.from_progress(note))
    point, status = note.notification_point_id, note.status
    error: str | None = None
    http_status: int | None = None
    for attempt in range(1, max(1, target.attempts) + 1):
        if attempt > 1:
            await asyncio.sleep(target.backoff_s * 2 ** (attempt - 2))
        try:
            resp = await post(body)
        except _Unreachable as exc:
            error, http_status = f"transport error ({exc})", None
            continue
        http_status = resp.status_code
        if http_status >= 500 or http_status in _RETRY_HTTP:
            error = f"HTTP {http_status}"
            continue
        if 200 <= http_status < 300:
            refused = _refusal(resp)
            return Delivery(point, status, refused is None, attempt, http_status, refused)
        return Delivery(point, status, False, attempt, http_status, _refusal(resp), "refused")
    return Delivery(point, status, False, max(1, target.attempts), http_status, None, error)


def _refusal(resp: _Answer) -> str | None:
    """``subject/reason`` when the body is an ES2+ Failed answer, else None."""
    if not resp.content:
        return None
    try:
        header = wire.Es2Response.model_validate(resp.json()).header
    except ValueError:
        return None
    data = header.function_execution_status.status_code_data
    if header.function_execution_status.status in wire.SUCCESS_STATUSES or data is None:
        return None
    return f"{data.subject_code}/{data.reason_code}"
