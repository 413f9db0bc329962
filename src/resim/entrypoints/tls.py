"""TLS for resim's own servers, with the client's certificate handed to the app.

uvicorn terminates TLS (``ssl_certfile``/``ssl_keyfile``; with ``ssl_ca_certs``
and ``ssl_cert_reqs`` it asks for and verifies a client certificate) but it
does not fill the ASGI TLS extension, ``scope["extensions"]["tls"]``: the app
cannot tell which client certificate, if any, a request came with.

What we do: uvicorn takes an HTTP protocol *class* (``http=``). Ours is
uvicorn's own (httptools, else h11) with one addition. asyncio calls a
protocol's ``connection_made`` only once the TLS handshake has completed (the
client's Certificate and CertificateVerify are part of it, in TLS 1.2 and in
1.3 alike), so there ``transport.get_extra_info("ssl_object")`` holds the
verified peer certificate. We read it once per connection and wrap that
connection's app so that every request on it carries the ASGI TLS extension
(``client_cert_chain``: the leaf as PEM; ``client_cert_name``: its RFC 4514
subject; ``tls_version``). The app reads the standard key, so nothing changes
if uvicorn fills it one day or another server is used.

Why not the alternatives: a header set by a proxy can be forged by any client
that reaches the app directly; reading the socket from inside the app needs
private attributes of the server; ``ssl_context_factory`` with a verify
callback cannot pass anything to the request. Only the transport knows, and
only the protocol sees the transport.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from resim.errors import ConfigurationError

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI TLS extension for one connection (asgiref's "TLS Extension")."""
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    if der:
        from cryptography import x509  # only for the subject's RFC 4514 form

        chain = [ssl.DER_cert_to_PEM_cert(der)]
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        # A certificate that failed verification ends the handshake: none gets here.
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _with_tls(app: Any, tls: dict[str, Any]) -> Any:
    async def app_with_tls(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await app(scope, receive, send)

    return app_with_tls


class _PeerCertificate:
    """Mixin for a uvicorn HTTP protocol: see the module docstring."""

    app: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _with_tls(self.app, tls_extension(ssl_object))


class TlsH11Protocol(_PeerCertificate, H11Protocol):
    """uvicorn's h11 protocol, with the ASGI TLS extension."""


def peer_certificate_protocol() -> type[asyncio.Protocol]:
    """uvicorn's fastest HTTP protocol here (httptools, else h11) with the TLS extension."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        return TlsH11Protocol

    class TlsHttpToolsProtocol(_PeerCertificate, HttpToolsProtocol):
        """uvicorn's httptools protocol, with the ASGI TLS extension."""

    return TlsHttpToolsProtocol


def server_tls_options(
    certfile: str | None,
    keyfile: str | None,
    client_ca: str | None,
    *,
    require_client_cert: bool,
) -> dict[str, Any]:
    """uvicorn options: plain HTTP without ``certfile``; with ``client_ca`` the
    server asks for a client certificate and refuses, in the handshake, one that
    CA did not issue. ``require_client_cert``: a client without one is refused
    too (CERT_REQUIRED, an ES2+-only server); otherwise it may go on without
    (CERT_OPTIONAL: resim's API also serves browsers) and the app decides.
    """
    if not certfile:
        return {}
    options: dict[str, Any] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if client_ca:
        options.update(
            ssl_ca_certs=client_ca,
            ssl_cert_reqs=ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL,
            http=peer_certificate_protocol(),
        )
    return options


def check_server_tls(certfile: str | None, keyfile: str | None, client_ca: str | None) -> None:
    """Load the files as the server will, before it starts: a missing or unreadable
    file is a ConfigurationError naming the setting, not a traceback from uvicorn."""
    if not certfile:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError):
        raise ConfigurationError(
            "RESIM_API_TLS_CERT_FILE / RESIM_API_TLS_KEY_FILE: cannot load the server"
            " certificate and its key (missing file, wrong format or a key that does not match)"
        ) from None
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError):
            raise ConfigurationError(
                "RESIM_API_TLS_CLIENT_CA_FILE: cannot load the client CA bundle (PEM)"
            ) from None


def client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The PEM client certificate the request's connection was made with, or None."""
    extensions = scope.get("extensions") or {}
    tls = extensions.get("tls") if isinstance(extensions, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if isinstance(chain, list | tuple) and chain and isinstance(chain[0], str):
        return chain[0]
    return None
