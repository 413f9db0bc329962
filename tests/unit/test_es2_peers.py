"""Which SM-DP+ a client certificate is (RESIM_SMDP_CALLBACK_CLIENTS), and the settings
that configure it: refused at start-up when they could not work."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from resim.adapters.es2.peers import CertificatePeers
from resim.settings import Es2CallbackClient, Settings

NOW = dt.datetime.now(dt.UTC)


def certificate(cn: str, *, org: str = "Example", dns: str | None = None) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sha256(pem: str) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class TestIdentify:
    def test_by_fingerprint_with_or_without_colons_in_any_case(self) -> None:
        pem = certificate("smdp-a")
        digits = sha256(pem)
        colons = ":".join(digits[i : i + 2] for i in range(0, 64, 2)).upper()
        for written in (digits, colons):
            peers = CertificatePeers(
                [Es2CallbackClient(requester_id="smdp-a", sha256=written, brands=("dk",))]
            )
            peer = peers.identify(pem)
            assert peer is not None
            assert (peer.requester_id, peer.via, peer.brands) == (
                "smdp-a",
                "client-certificate",
                frozenset({"dk"}),
            )

    def test_by_subject_compares_names_not_text(self) -> None:
        peers = CertificatePeers(
            [Es2CallbackClient(requester_id="b", subject="O=Example,CN=smdp-b")]
        )
        assert peers.identify(certificate("smdp-b")) is not None
        assert peers.identify(certificate("smdp-b", org="Other")) is None
        assert peers.identify(certificate("smdp-bb")) is None

    def test_by_dns_alternative_name_case_insensitively(self) -> None:
        peers = CertificatePeers([Es2CallbackClient(requester_id="c", san="SMDP.example.COM")])
        peer = peers.identify(certificate("x", dns="smdp.example.com"))
        assert peer is not None and peer.brands is None  # no brands: every brand
        assert peers.identify(certificate("smdp.example.com")) is None  # a CN is not a SAN

    def test_an_unknown_certificate_or_garbage_is_no_one(self) -> None:
        peers = CertificatePeers([Es2CallbackClient(requester_id="a", sha256="0" * 64)])
        assert peers.identify(certificate("smdp-a")) is None
        assert peers.identify("-----BEGIN CERTIFICATE-----\nnot\n-----END CERTIFICATE-----") is None


class TestSettings:
    def test_each_client_names_exactly_one_way_to_recognise_it(self) -> None:
        with pytest.raises(ValidationError, match="exactly one"):
            Es2CallbackClient(requester_id="a")
        with pytest.raises(ValidationError, match="exactly one"):
            Es2CallbackClient(requester_id="a", sha256="0" * 64, san="x.example")
        with pytest.raises(ValidationError, match="64 hex"):
            Es2CallbackClient(requester_id="a", sha256="abc")

    def test_clients_are_read_from_json_in_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("RESIM_API_TLS_CERT_FILE", str(tmp_path / "c.pem"))
        monkeypatch.setenv("RESIM_API_TLS_CLIENT_CA_FILE", str(tmp_path / "ca.pem"))
        monkeypatch.setenv(
            "RESIM_SMDP_CALLBACK_CLIENTS",
            '[{"requester_id": "smdp-a", "san": "smdp.example", "brands": ["dk", "no"]}]',
        )
        settings = Settings(data_dir=tmp_path)
        assert settings.callback_mtls
        assert settings.smdp_callback_clients[0].brands == ("dk", "no")

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"api_tls_client_ca_file": "ca.pem"}, "RESIM_API_TLS_CERT_FILE is needed"),
            (
                {"smdp_callback_clients": [{"requester_id": "a", "san": "x"}]},
                "needs RESIM_API_TLS_CLIENT_CA_FILE",
            ),
            (
                {"api_tls_cert_file": "c.pem", "api_tls_client_ca_file": "ca.pem"},
                "maps no certificate",
            ),
        ],
    )
    def test_settings_that_could_not_work_are_refused_at_start_up(
        self, values: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValidationError, match=message):
            Settings.model_validate(values)

    def test_production_needs_no_callback_token_when_callbacks_use_certificates(
        self, tmp_path: Path
    ) -> None:
        from resim.bootstrap import load_secrets

        settings = Settings.model_validate(
            {
                "environment": "production",
                "data_dir": tmp_path,
                "secret_keys": "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
                "api_tls_cert_file": "c.pem",
                "api_tls_client_ca_file": "ca.pem",
                "smdp_callback_clients": [{"requester_id": "a", "san": "x.example"}],
                "argon2_memory_kib": 19456,
                "argon2_time_cost": 2,
            }
        )
        # No token, and none derived: with mutual TLS the token is not a way in.
        assert load_secrets(settings).callback_token == ""
        without = settings.model_copy(update={"api_tls_client_ca_file": None})
        with pytest.raises(RuntimeError, match="RESIM_SMDP_CALLBACK_TOKEN must be set"):
            load_secrets(without)


class TestServeRefusesTlsFilesItCannotLoad:
    def run_serve(self, tmp_path: Path, **env: str) -> tuple[int, str]:
        from typer.testing import CliRunner

        from resim.entrypoints.cli import app

        base = {"RESIM_DATA_DIR": str(tmp_path), "RESIM_LOG_LEVEL": "WARNING"}
        result = CliRunner().invoke(app, ["serve"], env={**base, **env})
        return result.exit_code, result.output + result.stderr

    def test_a_missing_certificate_is_named_before_anything_starts(self, tmp_path: Path) -> None:
        code, out = self.run_serve(tmp_path, RESIM_API_TLS_CERT_FILE=str(tmp_path / "none.pem"))
        assert code == 2
        assert "RESIM_API_TLS_CERT_FILE" in out and "Traceback" not in out

    def test_a_mapping_without_a_client_ca_is_refused(self, tmp_path: Path) -> None:
        code, out = self.run_serve(
            tmp_path,
            RESIM_API_TLS_CERT_FILE=str(tmp_path / "c.pem"),
            RESIM_SMDP_CALLBACK_CLIENTS='[{"requester_id": "a", "san": "x.example"}]',
        )
        assert code == 2 and "RESIM_API_TLS_CLIENT_CA_FILE" in out

    def test_a_client_ca_that_is_not_pem_is_named(self, tmp_path: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "resim")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(NOW)
            .not_valid_after(NOW + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        (tmp_path / "c.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (tmp_path / "ca.pem").write_text("not a certificate")
        code, out = self.run_serve(
            tmp_path,
            RESIM_API_TLS_CERT_FILE=str(tmp_path / "c.pem"),
            RESIM_API_TLS_CLIENT_CA_FILE=str(tmp_path / "ca.pem"),
            RESIM_SMDP_CALLBACK_CLIENTS='[{"requester_id": "a", "san": "x.example"}]',
        )
        assert code == 2
        assert "RESIM_API_TLS_CLIENT_CA_FILE" in out and "Traceback" not in out
