"""KeepAliveClient over mutual TLS against a real ``ssl`` server on loopback: the
client certificate is presented and the connection kept; refusals either way."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest
from test_es2_mtls import Ca, Issued
from test_http_keepalive import OK, Server, post, replying

from resim.adapters.http_keepalive import KeepAliveClient

pytestmark = pytest.mark.integration


class Tls:
    def __init__(self, root: Path) -> None:
        self.ca = Ca(root, "keepalive-ca")
        self.server = self.ca.issue("keepalive-server", server=True)
        self.client = self.ca.issue("keepalive-client", server=False)
        self.stranger = Ca(root, "keepalive-stranger").issue("impostor", server=True)

    def server_context(self, cert: Issued) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca.pem))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
        return ctx

    def client_context(self, *, with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca.pem))
        if with_cert:
            ctx.load_cert_chain(str(self.client.cert), str(self.client.key))
        return ctx


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls(tmp_path_factory.mktemp("keepalive-pki"))


class TestMutualTls:
    def test_the_client_certificate_is_presented_and_the_connection_kept(self, tls: Tls) -> None:
        async def go() -> Server:
            server = Server(replying(OK))
            url = await server.start(tls.server_context(tls.server))
            client = KeepAliveClient(url, timeout=5, tls=tls.client_context())
            for _ in range(3):
                assert (await post(client)).status_code == 200  # type: ignore[attr-defined]
            await client.aclose()
            server.close()
            return server

        server = asyncio.run(go())
        assert server.conns == [1, 1, 1]
        subject = dict(pair[0] for pair in server.peers[0]["subject"])  # type: ignore[index]
        assert subject["commonName"] == "keepalive-client"

    def test_without_a_client_certificate_nothing_reaches_the_server(self, tls: Tls) -> None:
        async def go() -> tuple[httpx.HTTPError, Server]:
            server = Server(replying(OK))
            url = await server.start(tls.server_context(tls.server))
            client = KeepAliveClient(url, timeout=5, tls=tls.client_context(with_cert=False))
            with pytest.raises(httpx.HTTPError) as info:
                await post(client)
            await client.aclose()
            server.close()
            return info.value, server

        error, server = asyncio.run(go())
        assert isinstance(error, httpx.TransportError)
        assert server.seen == []

    def test_an_untrusted_server_is_a_connect_error_naming_the_tls_cause(self, tls: Tls) -> None:
        async def go() -> httpx.HTTPError:
            server = Server(replying(OK))
            url = await server.start(tls.server_context(tls.stranger))
            client = KeepAliveClient(url, timeout=5, tls=tls.client_context())
            with pytest.raises(httpx.ConnectError) as info:
                await post(client)
            await client.aclose()
            server.close()
            return info.value

        error = asyncio.run(go())
        assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
