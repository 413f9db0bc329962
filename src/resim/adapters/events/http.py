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

Where it connects (issue 13, finding 7: SSRF): only to addresses
``services.sink_guard.sink_addresses`` accepts (public unicast, plus the
operator's allow-list and, in tests and the demo, loopback), checked for every
connection and connected to exactly as checked (:mod:`.pinned`), so a stored
sink on a private address, or a name that now resolves to one, gets nothing::

    refused address                           -> SinkError(retryable=False,
                                                  code="SINK_ADDRESS_REFUSED")
    name without an address                   -> SinkError(retryable=True,
                                                  code="SINK_UNAVAILABLE")

A ``transport`` given by a test (``httpx.MockTransport``) replaces the pinned
one and makes no connection at all.

Thread safety: one ``httpx.Client`` (a connection pool) shared by all threads.
"""

from __future__ import annotations

import json
import ssl
from urllib.parse import urlsplit

import httpcore
import httpx

from resim.adapters.events.pinned import PinnedTransport
from resim.adapters.events.resolver import SystemResolver
from resim.domain.camara_events import CLOUDEVENTS_CONTENT_TYPE
from resim.domain.sink_address import SinkAddressRules
from resim.errors import ExternalError, Refused, SinkError
from resim.services.camara.sink_guard import sink_addresses
from resim.services.ports import HostResolver, OutgoingEvent


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
    """``rules`` and ``resolver`` decide where it may connect (default: public
    addresses only, the system's resolver); ``verify`` and ``network_backend``
    are for tests (a test CA; a backend that refuses anything but loopback)."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 50,
        rules: SinkAddressRules | None = None,
        resolver: HostResolver | None = None,
        verify: ssl.SSLContext | bool = True,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._rules = rules or SinkAddressRules()
        self._resolver = resolver or SystemResolver()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            transport=transport
            or PinnedTransport(
                self._checked_addresses,
                verify=verify,
                max_connections=max_connections,
                network_backend=network_backend,
            ),
            trust_env=False,  # never a proxy from the environment: we make the connection
            headers={"User-Agent": "resim-camara-notifications"},
        )

    def _checked_addresses(self, host: str, port: int) -> list[str]:
        try:
            return sink_addresses(host, port, resolver=self._resolver, rules=self._rules)
        except Refused as exc:
            raise SinkError(
                exc.message, retryable=False, status=None, code="SINK_ADDRESS_REFUSED"
            ) from None
        except ExternalError as exc:
            raise SinkError(
                exc.message, retryable=True, status=None, code="SINK_UNAVAILABLE"
            ) from None

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
