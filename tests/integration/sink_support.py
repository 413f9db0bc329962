"""Test helpers for the SSRF tests (issue 13, finding 7): a network backend that never
leaves loopback, and an HTTPS sink on loopback with a certificate for a made-up name.

``LoopbackOnly`` sits under the pinned transport, so even if the address check
were broken a test could not reach 10.0.0.1 or 169.254.169.254: the attempt is
recorded and refused here, and the test fails on that record.
:func:`loopback_sockets_only` is the second net, for a change that bypasses the
pinned transport altogether: while it is on, the socket module resolves no
name and connects to loopback only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class LoopbackOnly(httpcore.NetworkBackend):
    """Connects to loopback addresses only; records every address it was asked for."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self.asked: list[str] = []

    @property
    def outside(self) -> list[str]:
        return [a for a in self.asked if not ipaddress.ip_address(a).is_loopback]

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.asked.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"the test refuses to connect to {host}")
        return self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("no unix sockets in these tests")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _loopback(address: object) -> bool:
    try:
        return ipaddress.ip_address(str(address).partition("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_sockets_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and record) any name look-up or connection outside loopback in a test."""
    refused: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            refused.append(f"lookup {host}")
            raise socket.gaierror(f"the test resolves no name ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(address[0]):
            refused.append(f"connect {address[0]}")
            raise ConnectionRefusedError(f"the test connects to loopback only ({address[0]})")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield refused
    assert refused == [], f"a test tried to leave loopback: {refused}"


@dataclass
class Seen:
    host: str | None
    authorization: str | None
    body: dict[str, Any]


@dataclass
class TlsSink:
    """An HTTPS server on 127.0.0.1 whose certificate names ``name`` (signed by ``ca``)."""

    name: str
    port: int
    client_context: ssl.SSLContext  # trusts the test CA only
    server: ThreadingHTTPServer
    requests: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, host: str | None = None) -> str:
        return f"https://{host or self.name}:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    *,
    dns: str | None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if dns is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), False)
    return builder.sign(signer, hashes.SHA256())


def start_tls_sink(tmp: Path, name: str) -> TlsSink:
    ca_key, leaf_key = _key(), _key()
    ca = _cert("resim test CA", ca_key, None, ca_key, dns=None)
    leaf = _cert(name, leaf_key, ca.subject, ca_key, dns=name)
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
    seen: list[Seen] = []
    sni: list[str | None] = []
    server_context.sni_callback = lambda _sock, server_name, _ctx: sni.append(server_name)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            seen.append(Seen(self.headers.get("Host"), self.headers.get("Authorization"), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:  # requests carry a bearer token
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return TlsSink(name, server.server_address[1], client, server, seen, sni)
