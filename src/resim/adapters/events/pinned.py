"""An httpx transport that connects only to addresses it has just checked (SSRF guard).

httpx would resolve a sink's name itself when it opens a connection; checking
the name earlier leaves a gap in which its DNS answer can change (rebinding:
public for the check, 10.0.0.1 for the connection). Here the connection is
opened by :class:`PinnedBackend`, an httpcore network backend that asks the
``resolve`` callable (``services.sink_guard.sink_addresses``: resolve and check
every address) for the addresses of the host it was asked for, and connects to
one of exactly those. Everything else stays on the *name*: httpcore sends the
Host header from the URL and starts TLS with ``server_hostname`` set to the
URL's host, so SNI and certificate verification are for the sink's name, not
its address. A pooled connection was made to a checked address; keep-alive
reuses it only for the same scheme, host and port.

Errors: whatever ``resolve`` raises (SinkError) passes through untouched;
httpcore's exceptions are mapped to httpx's (timeouts to TimeoutException,
the rest to TransportError), so callers handle this transport as any other.
No proxy is ever used: a proxy would make the connection, not this backend.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

Resolve = Callable[[str, int], list[str]]

_CONNECT_ERRORS = (httpcore.ConnectError, httpcore.ConnectTimeout)


class PinnedBackend(httpcore.NetworkBackend):
    """Opens TCP connections to the addresses ``resolve`` returns for a host, in order."""

    def __init__(self, resolve: Resolve, inner: httpcore.NetworkBackend | None = None) -> None:
        self._resolve = resolve
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except _CONNECT_ERRORS as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("a notification sink is never a unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(str(exc), request=request) from exc
    except (
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.ProxyError,
        httpcore.UnsupportedProtocol,
    ) as exc:
        raise httpx.TransportError(str(exc), request=request) from exc


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        with _mapped(self._request):
            stream = self._response.stream
            assert isinstance(stream, Iterable)
            yield from stream

    def close(self) -> None:
        with _mapped(self._request):
            self._response.close()


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool whose connections :class:`PinnedBackend`
    opens. ``verify``: True (the system's CAs, as httpx), or an SSLContext (tests)."""

    def __init__(
        self,
        resolve: Resolve,
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 50,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=PinnedBackend(resolve, network_backend),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped(request):
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, request),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
