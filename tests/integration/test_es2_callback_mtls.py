"""Issue 15, item 5: handleDownloadProgressInfo from a standard SM-DP+, over mutual TLS.

resim's API app is served over real HTTPS on loopback, configured as an
operator would (``RESIM_API_TLS_*`` and ``RESIM_SMDP_CALLBACK_CLIENTS`` through
:class:`Settings`), with certificates made here: a CA for the operator's
SM-DP+ peers issues the server certificate and the SM-DP+ client
certificates; a stranger CA stands for anyone else. Two brands ("dk", "no")
each have their own SM-DP+ peer. Everything is checked from the outside:
what the HTTP caller gets, and what the database says afterwards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tenancy_support import OTHER, OWN, add_brand_line, add_other_brand, open_request
from test_es2_mtls import NOW, Ca, Issued, _key_usage
from test_replacement_flow import System
from test_replacement_flow import system as system

from resim.adapters.es2 import wire
from resim.bootstrap import build_api_config
from resim.domain.activation import parse_activation_code
from resim.emulator.app import EmulatorConfig
from resim.emulator.server import EmulatorThread
from resim.entrypoints.api.app import build_app
from resim.entrypoints.serving import ServerThread
from resim.entrypoints.tls import server_tls_options
from resim.services.ports import DownloadProgress
from resim.services.replacement import queries
from resim.settings import Settings

pytestmark = pytest.mark.integration

CALLBACK = wire.PATH_PREFIX + wire.HANDLE_DOWNLOAD_PROGRESS_INFO
SMDP_DK, SMDP_NO = "smdp-emulator", "smdp-fjord"  # the core in `system` calls itself smdp-emulator


def issue_client(ca: Ca, common_name: str, *, uri: str | None = None) -> Issued:
    """A client certificate (clientAuth), with a URI subject alternative name if given."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if uri:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    issued = Issued(ca.root / f"{common_name}.crt", ca.root / f"{common_name}.key")
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return issued


@dataclass(frozen=True)
class Pki:
    ca: Ca
    server: Issued
    smdp_dk: Issued  # mapped by SHA-256 fingerprint to SMDP_DK, brand "dk"
    smdp_no: Issued  # mapped by subject to SMDP_NO, brand "no"
    smdp_san: Issued  # mapped by a URI SAN to SMDP_DK, brand "dk"
    unmapped: Issued  # our CA, but in no mapping
    stranger: Issued  # another CA's client certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("es2-peers")
    ca = Ca(root, "es2-peers-ca")
    return Pki(
        ca=ca,
        server=ca.issue("resim-api", server=True),
        smdp_dk=issue_client(ca, "smdp.nordlys.example"),
        smdp_no=issue_client(ca, "smdp.fjord.example"),
        smdp_san=issue_client(ca, "smdp-second-node", uri="urn:smdp:nordlys:2"),
        unmapped=issue_client(ca, "someone-else"),
        # The same name as the dk SM-DP+'s, from a CA nobody told resim about.
        stranger=issue_client(Ca(_subdir(root, "stranger"), "stranger-ca"), "smdp.nordlys.example"),
    )


def _subdir(root: Path, name: str) -> Path:
    (root / name).mkdir()
    return root / name


def mtls_settings(pki: Pki, db_url: str, data_dir: Path) -> Settings:
    """The settings an operator writes (as JSON in RESIM_SMDP_CALLBACK_CLIENTS)."""
    clients = [
        {"requester_id": SMDP_DK, "sha256": _colons(sha256_of(pki.smdp_dk.cert.read_bytes())),
         "brands": [OWN]},
        {"requester_id": SMDP_NO, "subject": "CN=smdp.fjord.example", "brands": [OTHER]},
        {"requester_id": SMDP_DK, "san": "urn:smdp:nordlys:2", "brands": [OWN]},
    ]  # fmt: skip
    return Settings.model_validate(
        {
            "database_url": db_url,
            "data_dir": data_dir,
            "secret_keys": "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA=",
            "api_tls_cert_file": pki.server.cert,
            "api_tls_key_file": pki.server.key,
            "api_tls_client_ca_file": pki.ca.pem,
            "smdp_callback_clients": json.loads(json.dumps(clients)),
        }
    )


def _colons(hex_digits: str) -> str:
    return ":".join(hex_digits[i : i + 2] for i in range(0, len(hex_digits), 2)).upper()


@dataclass
class Stack:
    system: System
    server: ServerThread
    pki: Pki
    settings: Settings

    def client(self, who: Issued | None) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.pki.ca.pem))
        if who is not None:
            context.load_cert_chain(*who.pair)
        return httpx.Client(base_url=self.server.url, verify=context, timeout=10.0)

    def ready(self, brand: str, n: int) -> tuple[str, str]:
        """A ready eSIM request of ``brand``: (request id, its new ICCID)."""
        msisdn, email = add_brand_line(self.system, brand, n)
        rid = open_request(self.system, msisdn, email)
        view = queries.get_request_view(self.system.ctx, rid)
        assert view["state"] == "ready"
        return rid, str(view["new_iccid"])


@pytest.fixture
def stack(system: System, pki: Pki, db_url: str, tmp_path: Path) -> Iterator[Stack]:
    add_other_brand(system)
    settings = mtls_settings(pki, db_url, tmp_path)
    app = build_app(system.ctx, build_api_config(settings, clock=system.ctx.clock))
    tls = server_tls_options(
        str(settings.api_tls_cert_file),
        str(settings.api_tls_key_file),
        str(settings.api_tls_client_ca_file),
        require_client_cert=False,
    )
    server = ServerThread(app, tls=tls).start()
    try:
        yield Stack(system, server, pki, settings)
    finally:
        server.stop()


def installed(iccid: str, requester: str, *, point: int = 4) -> dict[str, Any]:
    note = DownloadProgress(
        smdp_id=requester,
        call_id=uuid.uuid4().hex,
        iccid=iccid,
        profile_type="default",
        timestamp=dt.datetime.now(dt.UTC),
        notification_point_id=point,
        status="Executed-Success",
    )
    return wire.dump(wire.HandleDownloadProgressInfoRequest.from_progress(note))


def post(client: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(CALLBACK, json=body, headers={**wire.es2_headers(), **headers})


def install_state(stack: Stack, rid: str) -> tuple[str, object]:
    with stack.system.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT state, installed_at FROM replacement_request WHERE id = :id"),
            {"id": rid},
        ).one()
    return str(row.state), row.installed_at


def es2_status(resp: httpx.Response) -> tuple[str, str, str]:
    status = resp.json()["header"]["functionExecutionStatus"]
    data = status.get("statusCodeData") or {}
    return status["status"], data.get("subjectCode", ""), data.get("reasonCode", "")


class TestAnAllowedCertificate:
    def test_is_accepted_without_a_token_and_the_cut_over_follows(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 1)
        with stack.client(stack.pki.smdp_dk) as http:
            resp = post(http, installed(iccid, SMDP_DK))
        assert resp.status_code == 204, resp.text
        assert resp.content == b""
        assert resp.headers["X-Admin-Protocol"] == "gsma/rsp/v2.5.0"
        assert install_state(stack, rid)[1] is not None
        stack.system.run_jobs()
        assert install_state(stack, rid)[0] == "completed"
        with stack.system.engine.connect() as conn:
            details = conn.execute(
                sa.text(
                    "SELECT actor, detail FROM audit_event"
                    " WHERE object_id = :id AND action = 'esim.progress'"
                ),
                {"id": rid},
            ).all()
        assert [(a, _json(d)["via"]) for a, d in details] == [
            (f"smdp:{SMDP_DK}", "client-certificate")
        ]

    def test_a_certificate_named_by_its_alternative_name_is_accepted(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 2)
        with stack.client(stack.pki.smdp_san) as http:
            assert post(http, installed(iccid, SMDP_DK)).status_code == 204
        assert install_state(stack, rid)[1] is not None

    def test_a_browser_without_a_certificate_still_reaches_the_other_routes(
        self, stack: Stack
    ) -> None:
        # CERT_OPTIONAL: the portal and the BSS API serve callers without one.
        with stack.client(None) as http:
            assert http.get("/health").json() == {"status": "ok"}


class TestRefusedCallers:
    def test_a_certificate_of_our_ca_that_is_mapped_to_no_one_is_401(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 3)
        with stack.client(stack.pki.unmapped) as http:
            resp = post(http, installed(iccid, SMDP_DK))
        assert resp.status_code == 401
        assert es2_status(resp) == ("Failed", "1.1", "1.1")
        assert install_state(stack, rid) == ("ready", None)

    def test_a_certificate_from_another_ca_is_refused_in_the_handshake(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 4)
        with stack.client(stack.pki.stranger) as http, pytest.raises(httpx.TransportError):
            # TLS 1.3: the client learns of the refusal when it reads the answer.
            post(http, installed(iccid, SMDP_DK))
        assert install_state(stack, rid) == ("ready", None)

    def test_no_certificate_and_no_token_is_401(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 5)
        with stack.client(None) as http:
            resp = post(http, installed(iccid, SMDP_DK))
        assert resp.status_code == 401
        assert es2_status(resp) == ("Failed", "1.1", "1.1")
        assert install_state(stack, rid) == ("ready", None)

    def test_with_mutual_tls_on_the_bearer_token_no_longer_opens_the_door(
        self, stack: Stack
    ) -> None:
        # The token a proxied deployment would use (here: one set explicitly).
        rid, iccid = stack.ready(OWN, 6)
        with stack.client(None) as http:
            resp = post(http, installed(iccid, SMDP_DK), Authorization="Bearer any-token-at-all")
        assert resp.status_code == 401
        assert install_state(stack, rid) == ("ready", None)

    def test_a_peer_claiming_another_requester_id_is_401(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 7)
        with stack.client(stack.pki.smdp_no) as http:
            resp = post(http, installed(iccid, SMDP_DK))  # the dk SM-DP+'s id, no's certificate
        assert resp.status_code == 401
        assert install_state(stack, rid) == ("ready", None)


class TestBrands:
    def test_another_brands_smdp_cannot_install_this_brands_iccid(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OWN, 8)
        with stack.client(stack.pki.smdp_no) as http:
            resp = post(http, installed(iccid, SMDP_NO))
        # Answered as for an ICCID nobody ordered: nothing says it exists elsewhere.
        assert resp.status_code == 200
        assert es2_status(resp) == ("Failed", "8.2.1", "3.9")
        assert install_state(stack, rid) == ("ready", None)
        stack.system.run_jobs()
        assert install_state(stack, rid) == ("ready", None)

    def test_and_the_other_way_round(self, stack: Stack) -> None:
        rid, iccid = stack.ready(OTHER, 9)
        with stack.client(stack.pki.smdp_dk) as http:
            resp = post(http, installed(iccid, SMDP_DK))
        assert es2_status(resp) == ("Failed", "8.2.1", "3.9")
        assert install_state(stack, rid) == ("ready", None)
        with stack.client(stack.pki.smdp_no) as http:
            assert post(http, installed(iccid, SMDP_NO)).status_code == 204
        assert install_state(stack, rid)[1] is not None


class TestTheEmulatorAsAStandardSmdp:
    def test_a_phone_install_reaches_resim_over_mutual_tls_and_ends_in_cut_over(
        self, stack: Stack
    ) -> None:
        rid, _iccid = stack.ready(OWN, 10)
        code = queries.activation_view(stack.system.ctx, rid, reader="test", via="test")
        config = EmulatorConfig(
            callback_url=stack.server.url,
            callback_token=None,  # no bearer token: the certificate is the credential
            callback_client_cert=stack.pki.smdp_dk.pair,
            callback_ca_bundle=str(stack.pki.ca.pem),
            callback_attempts=1,
        )
        with EmulatorThread(config, core=stack.system.smdp) as smdp:
            resp = httpx.post(
                f"{smdp.url}/emulator/phone/install",
                json={"activation_code": code["qr_payload"]},
                timeout=10.0,
            )
        assert resp.status_code == 200, resp.text
        assert [(c["notificationPointId"], c["httpStatus"]) for c in resp.json()["callbacks"]] == [
            (3, 204),
            (4, 204),
        ]
        assert parse_activation_code(code["qr_payload"]).matching_id  # a real code was used
        stack.system.run_jobs()
        assert install_state(stack, rid)[0] == "completed"


def _json(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(str(value))


def sha256_of(cert_pem: bytes) -> str:
    """The certificate's SHA-256 fingerprint, as an operator computes it
    (``openssl x509 -noout -fingerprint -sha256``), in hex."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    return hashlib.sha256(der).hexdigest()
