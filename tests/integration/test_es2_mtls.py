"""ES2+ over mutual TLS: HttpEs2Client against the emulator served over HTTPS on loopback.

SGP.22 puts ES2+ on TLS with certificates on both sides. A private CA made
here issues the emulator's server certificate (127.0.0.1 and localhost) and
resim's client certificate; the emulator requires a client certificate from
that CA. A second CA stands for "a server we were not told to trust".
Keys are P-256 (as SGP.22 certificates are), which keeps generation fast.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from resim.adapters.es2.client import HttpEs2Client
from resim.adapters.es2.client_async import AsyncHttpEs2Client
from resim.adapters.es2.errors import SMDP_UNAVAILABLE
from resim.emulator.app import EmulatorConfig
from resim.emulator.model import ProfileState
from resim.emulator.server import EmulatorThread
from resim.errors import ExternalError

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path

    @property
    def pair(self) -> tuple[str, str]:
        return str(self.cert), str(self.key)


class Ca:
    """A private certificate authority that writes what it issues under ``root``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.key = ec.generate_private_key(ec.SECP256R1())
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            self._builder(self.name, self.key.public_key())
            .issuer_name(self.name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = root / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str, *, server: bool, names: tuple[str, ...] = ()) -> Issued:
        """A leaf certificate; a server one is valid for ``names`` (default
        127.0.0.1 and localhost)."""
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
                key.public_key(),
            )
            .issuer_name(self.name)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            sans: list[x509.GeneralName] = (
                [x509.DNSName(name) for name in names]
                if names
                else [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            )
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(self.root / f"{common_name}.crt", self.root / f"{common_name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued

    @staticmethod
    def _builder(
        subject: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(minutes=5))
            .not_valid_after(NOW + dt.timedelta(days=1))
        )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Pki:
    ca: Ca
    server: Issued
    client: Issued
    stranger_server: Issued  # issued by a CA the client does not trust
    elsewhere_server: Issued  # our CA, but for another host name


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = Ca(root, "es2-test-ca")
    stranger = Ca(root, "stranger-ca")
    return Pki(
        ca=ca,
        server=ca.issue("smdp", server=True),
        client=ca.issue("resim-operator", server=False),
        stranger_server=stranger.issue("smdp-impostor", server=True),
        elsewhere_server=ca.issue("smdp-elsewhere", server=True, names=("smdp.elsewhere.test",)),
    )


def mtls_emulator(pki: Pki, server: Issued) -> EmulatorThread:
    """The emulator over HTTPS with ``server``'s certificate, requiring client certs."""
    return EmulatorThread(
        EmulatorConfig(),
        ssl_certfile=str(server.cert),
        ssl_keyfile=str(server.key),
        ssl_ca_certs=str(pki.ca.pem),
    )


@pytest.fixture(scope="module")
def smdp(pki: Pki) -> Iterator[EmulatorThread]:
    with mtls_emulator(pki, pki.server) as server:
        yield server


def fresh_type(smdp: EmulatorThread) -> str:
    profile_type = f"mtls-{uuid.uuid4().hex[:6]}"
    smdp.core.add_generated_stock(profile_type, 2)
    return profile_type


class TestWithTheAgreedCertificates:
    def test_download_and_confirm_order_work(self, smdp: EmulatorThread, pki: Pki) -> None:
        assert smdp.url.startswith("https://127.0.0.1:")
        profile_type = fresh_type(smdp)
        with HttpEs2Client(
            smdp.url, "resim", timeout=5.0, client_cert=pki.client.pair, ca_bundle=str(pki.ca.pem)
        ) as client:
            ordered = client.download_order(call_id=uuid.uuid4().hex, profile_type=profile_type)
            assert smdp.core.profile(ordered.iccid).state is ProfileState.ALLOCATED
            confirmed = client.confirm_order(
                call_id=uuid.uuid4().hex, iccid=ordered.iccid, release_flag=True
            )
        assert confirmed.matching_id
        assert confirmed.smdp_address == "smdp.resim.test"
        assert smdp.core.profile(ordered.iccid).state is ProfileState.RELEASED

    def test_localhost_matches_the_certificate_too(self, smdp: EmulatorThread, pki: Pki) -> None:
        profile_type = fresh_type(smdp)
        url = smdp.url.replace("127.0.0.1", "localhost")
        with HttpEs2Client(
            url, "resim", timeout=5.0, client_cert=pki.client.pair, ca_bundle=str(pki.ca.pem)
        ) as client:
            ordered = client.download_order(call_id=uuid.uuid4().hex, profile_type=profile_type)
        assert smdp.core.profile(ordered.iccid).state is ProfileState.ALLOCATED


class TestRefusedConnections:
    def test_without_a_client_certificate_the_smdp_refuses_and_nothing_changes(
        self, smdp: EmulatorThread, pki: Pki
    ) -> None:
        profile_type = fresh_type(smdp)
        before = {p.iccid: p.state for p in smdp.core.profiles()}
        calls_before = len(smdp.core.calls())
        with (
            HttpEs2Client(smdp.url, "resim", timeout=5.0, ca_bundle=str(pki.ca.pem)) as client,
            pytest.raises(ExternalError) as info,
        ):
            client.download_order(call_id=uuid.uuid4().hex, profile_type=profile_type)
        # Under TLS 1.3 the server checks the client certificate after the client
        # has finished its handshake: the client writes its request, then sees the
        # connection closed without an answer. A transport error, so retryable.
        assert info.value.code == SMDP_UNAVAILABLE
        assert info.value.retryable is True
        assert {p.iccid: p.state for p in smdp.core.profiles()} == before
        assert len(smdp.core.calls()) == calls_before, "the request reached the app"

    def test_a_server_certificate_from_another_ca_is_refused_by_the_client(self, pki: Pki) -> None:
        with mtls_emulator(pki, pki.stranger_server) as impostor:
            profile_type = fresh_type(impostor)
            with (
                HttpEs2Client(
                    impostor.url,
                    "resim",
                    timeout=5.0,
                    client_cert=pki.client.pair,
                    ca_bundle=str(pki.ca.pem),
                ) as client,
                pytest.raises(ExternalError) as info,
            ):
                client.download_order(call_id=uuid.uuid4().hex, profile_type=profile_type)
            assert impostor.core.calls() == []
            assert all(p.state is ProfileState.AVAILABLE for p in impostor.core.profiles())
            # The refusal is the client's verification: switched off, the same call works.
            with HttpEs2Client(
                impostor.url, "resim", timeout=5.0, client_cert=pki.client.pair, verify=False
            ) as unchecked:
                unchecked.download_order(call_id=uuid.uuid4().hex, profile_type=profile_type)
        assert info.value.code == SMDP_UNAVAILABLE
        assert info.value.retryable is True  # fixing the CA bundle lets queued jobs finish
        assert "TLS: SM-DP+ certificate not trusted" in info.value.message

    def test_a_certificate_for_another_host_name_is_refused(self, pki: Pki) -> None:
        with (
            mtls_emulator(pki, pki.elsewhere_server) as elsewhere,
            HttpEs2Client(
                elsewhere.url,
                "resim",
                timeout=5.0,
                client_cert=pki.client.pair,
                ca_bundle=str(pki.ca.pem),
            ) as client,
            pytest.raises(ExternalError, match="certificate not trusted") as info,
        ):
            client.download_order(call_id=uuid.uuid4().hex, profile_type="any")
        assert info.value.code == SMDP_UNAVAILABLE
        assert "IP address mismatch" in info.value.message


class TestTheAsyncClientOnTheSameTls:
    """``asynchronous()`` (h11 on asyncio streams) honours the same settings."""

    def test_it_orders_and_confirms_on_one_kept_connection(
        self, smdp: EmulatorThread, pki: Pki
    ) -> None:
        profile_type = fresh_type(smdp)

        async def go(client: AsyncHttpEs2Client) -> tuple[str, str, int]:
            ordered = await client.download_order(
                call_id=uuid.uuid4().hex, profile_type=profile_type
            )
            confirmed = await client.confirm_order(
                call_id=uuid.uuid4().hex, iccid=ordered.iccid, release_flag=True
            )
            assert client._lean is not None
            kept = len(client._lean._idle)
            await client.aclose()
            return ordered.iccid, confirmed.matching_id, kept

        iccid, matching_id, kept = asyncio.run(
            go(async_client(smdp.url, client_cert=pki.client.pair, ca_bundle=str(pki.ca.pem)))
        )
        assert matching_id and kept == 1
        assert smdp.core.profile(iccid).state is ProfileState.RELEASED

    def test_without_a_client_certificate_nothing_reaches_the_smdp(
        self, smdp: EmulatorThread, pki: Pki
    ) -> None:
        calls_before = len(smdp.core.calls())
        error = refused(async_client(smdp.url, ca_bundle=str(pki.ca.pem)))
        assert (error.code, error.retryable) == (SMDP_UNAVAILABLE, True)
        assert len(smdp.core.calls()) == calls_before

    def test_an_untrusted_server_or_another_host_name_is_refused(self, pki: Pki) -> None:
        tls = {"client_cert": pki.client.pair, "ca_bundle": str(pki.ca.pem)}
        with mtls_emulator(pki, pki.stranger_server) as impostor:
            error = refused(async_client(impostor.url, **tls))
            assert impostor.core.calls() == []
        assert (error.code, error.retryable) == (SMDP_UNAVAILABLE, True)
        assert "TLS: SM-DP+ certificate not trusted" in error.message
        with mtls_emulator(pki, pki.elsewhere_server) as elsewhere:
            error = refused(async_client(elsewhere.url, **tls))
        assert "IP address mismatch" in error.message


def async_client(url: str, **tls: object) -> AsyncHttpEs2Client:
    with HttpEs2Client(url, "resim", timeout=5.0, **tls) as sync:  # type: ignore[arg-type]
        twin = sync.asynchronous()
    assert isinstance(twin, AsyncHttpEs2Client) and twin._lean is not None
    return twin


def refused(client: AsyncHttpEs2Client) -> ExternalError:
    async def go() -> ExternalError:
        with pytest.raises(ExternalError) as info:
            await client.download_order(call_id=uuid.uuid4().hex, profile_type="any")
        await client.aclose()
        return info.value

    return asyncio.run(go())


class TestTlsSettingsNeedHttps:
    @pytest.mark.parametrize("setting", ["client_cert", "ca_bundle"])
    def test_tls_settings_with_a_plain_http_url_are_refused_at_construction(
        self, pki: Pki, setting: str
    ) -> None:
        # Ignoring them would send ES2+ in clear text to a peer believed authenticated.
        values = {"client_cert": pki.client.pair, "ca_bundle": str(pki.ca.pem)}
        with pytest.raises(ValueError, match="https://"):
            HttpEs2Client("http://127.0.0.1:9", "resim", **{setting: values[setting]})
