"""HttpEventSink: the EventSink port over HTTP (httpx), CloudEvents structured mode.

Each event is ``POST <sink>`` with ``Content-Type: application/cloudevents+json``,
``Authorization: Bearer <sinkCredential.accessToken>`` when the subscription
has one, and ``x-correlator: <CloudEvents id>``. Redirects are not followed (the
bearer token must not travel to another address).

Errors, mapped at this boundary (services never see httpx)::

    transport error, timeout, 408, 429, 5xx   -> SinkError(retryable=True,
                                                  code="SINK_UNAVAILABLE")
    410 Gone                                  -> SinkError(retryable=False, code="SINK_GONE")
    any other non-2xx (3xx, 4xx)              -> SinkError(retryable=False,
                                                  code="SINK_REJECTED")

Messages name the sink's host and the status, never the token, the URL's path
or query, or the sink's reply body. Nothing here logs.

Thread safety: one ``httpx.Client`` (a connection pool) shared by all threads.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from resim.domain.camara_events import CLOUDEVENTS_CONTENT_TYPE
from resim.errors import SinkError
from resim.services.ports import OutgoingEvent


def status_error(host: str, status: int) -> SinkError | None:
    """The error for a sink's HTTP status (None for 2xx); see the module doc."""
    if 200 <= status < 300:
        return None
    if status in (408, 429) or status >= 500:
        return SinkError(
            f"sink {host} answered {status}",
            retryable=True,
            status=status,
            code="SINK_UNAVAILABLE",
        )
    code = "SINK_GONE" if status == 410 else "SINK_REJECTED"
    return SinkError(
        f"sink {host} refused the event ({status})", retryable=False, status=status, code=code
    )


def encode(event: OutgoingEvent) -> tuple[bytes, dict[str, str]]:
    """The request body and headers for ``event`` (shared with the fake)."""
    headers = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE, "x-correlator": event.id}
    if event.access_token:
        headers["Authorization"] = f"Bearer {event.access_token}"
    body = json.dumps(event.body, separators=(",", ":"), ensure_ascii=False).encode()
    return body, headers


class HttpEventSink:
    def __init__(
        self,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 50,
    ) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
            headers={"User-Agent": "resim-camara-notifications"},
        )

    def deliver(self, event: OutgoingEvent) -> int:
        host = urlsplit(event.sink).hostname or "?"
        body, headers = encode(event)
        try:
            response = self._client.post(event.sink, content=body, headers=headers)
        except httpx.TimeoutException:
            raise SinkError(
                f"sink {host} timed out", retryable=True, status=None, code="SINK_UNAVAILABLE"
            ) from None
        except httpx.HTTPError as exc:
            raise SinkError(
                f"sink {host} unreachable ({type(exc).__name__})",
                retryable=True,
                status=None,
                code="SINK_UNAVAILABLE",
            ) from None
        error = status_error(host, response.status_code)
        if error is not None:
            raise error
        return response.status_code

    def close(self) -> None:
        self._client.close()
