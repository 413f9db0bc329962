"""Issue 15, items 5 and 7: every resim process, started as an operator starts it, logs
one clean line per event; and a standard SM-DP+ set-up (mutual TLS both ways) works.

Each process is a real subprocess on free loopback ports: ``resim serve``
(HTTPS, client certificates for ES2+ callbacks), ``resim smdp-emulator``
(HTTPS requiring resim's client certificate; its callbacks to resim over
mutual TLS), ``resim worker`` (ES2+ calls with its client certificate), and
``resim demo --walkthrough``. A replacement goes from request to cut-over
through them; then each log is read as a log shipper would: no
"--- Logging error ---", no traceback, every line one event (JSON), and no
secret (one-time code, MatchingID, activation code, a bearer token sent by
an impostor, the secret key).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from resim.adapters.db.migrate import upgrade
from resim.adapters.mail.capture import MailCapture
from resim.adapters.sms.capture import SmsCapture
from resim.bootstrap import build_context, build_engine
from resim.domain.identifiers import iccid_with_check_digit
from resim.domain.policy import BrandPolicy
from resim.domain.verification import email_code_alone
from resim.entrypoints.demo import free_port
from resim.services.onboarding import seed
from resim.services.replacement import queries, requests
from resim.settings import Settings

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_es2_mtls import Ca, Issued

pytestmark = pytest.mark.e2e

SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
OTP = "864209"
IMPOSTOR_TOKEN = "impostor-bearer-0123456789abcdef"
ISO_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def resim_command(*args: str) -> list[str]:
    script = shutil.which("resim", path=str(Path(sys.executable).parent))
    if script:
        return [script, *args]
    return [sys.executable, "-c", "from resim.entrypoints.cli import main; main()", *args]


class Process:
    """One resim process; stdout and stderr go to one file, read at the end."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            resim_command(*args), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self, sig: signal.Signals = signal.SIGINT) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None


def wait_for(what: str, check: Callable[[], bool], procs: list[Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p.name for p in procs if not p.alive()]
        assert not dead, f"{dead} exited: {[p.log_path.read_text()[-2000:] for p in procs]}"
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tails = {p.name: p.log_path.read_text()[-1500:] for p in procs}
    raise AssertionError(f"timed out waiting for {what}; logs: {tails}")


def assert_clean_json_log(name: str, text: str, secrets: list[str]) -> list[dict[str, Any]]:
    """Every line one JSON event; no logging error, traceback or secret. The events."""
    assert "Logging error" not in text, f"{name}: {text[:3000]}"
    assert "Traceback" not in text, f"{name}: {text[:3000]}"
    events = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise AssertionError(f"{name}: not one JSON event per line: {line!r}") from None
        assert isinstance(event, dict) and "event" in event, f"{name}: {line!r}"
        events.append(event)
    for secret in secrets:
        assert secret not in text, f"{name} logged a secret"
    return events


def client_context(ca: Ca, who: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.pem))
    if who is not None:
        context.load_cert_chain(*who.pair)
    return context


@dataclass(frozen=True)
class Pki:
    ca: Ca
    api: Issued  # resim serve's server certificate
    smdp: Issued  # the emulator's server certificate
    operator: Issued  # resim's client certificate towards the SM-DP+
    smdp_client: Issued  # the SM-DP+'s client certificate towards resim


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("process-pki")
    ca = Ca(root, "operator-smdp-ca")
    return Pki(
        ca=ca,
        api=ca.issue("resim-api", server=True),
        smdp=ca.issue("smdp-server", server=True),
        operator=ca.issue("resim-operator", server=False),
        smdp_client=ca.issue("smdp-client", server=False),
    )


@dataclass
class Stack:
    serve: Process
    emulator: Process
    worker: Process
    api_url: str
    smdp_url: str


@pytest.fixture
def captures(tmp_path: Path) -> Iterator[tuple[MailCapture, SmsCapture]]:
    mail = MailCapture(tmp_path / "mail")
    mail.start()
    sms = SmsCapture(tmp_path / "sms").start()
    try:
        yield mail, sms
    finally:
        sms.stop()
        mail.stop()


def test_serve_worker_and_emulator_over_mutual_tls_log_one_clean_line_per_event(
    db_url: str, tmp_path: Path, pki: Pki, captures: tuple[MailCapture, SmsCapture]
) -> None:
    mail, sms = captures
    upgrade(db_url)
    api_port, smdp_port = free_port(), free_port()
    api_url, smdp_url = f"https://127.0.0.1:{api_port}", f"https://127.0.0.1:{smdp_port}"
    env = {
        **os.environ,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_DATABASE_URL": db_url,
        "RESIM_SECRET_KEYS": SECRET_KEY,
        "RESIM_PUBLIC_BASE_URL": api_url,
        "RESIM_LOG_FORMAT": "json",
        "RESIM_LOG_LEVEL": "INFO",
        "RESIM_SMTP_HOST": "127.0.0.1",
        "RESIM_SMTP_PORT": str(mail.port),
        "RESIM_SMS_GATEWAY_URL": sms.url,
        "RESIM_SMDP_URL": smdp_url,
        "RESIM_SMDP_CLIENT_CERT": str(pki.operator.cert),
        "RESIM_SMDP_CLIENT_KEY": str(pki.operator.key),
        "RESIM_SMDP_CA_BUNDLE": str(pki.ca.pem),
        "RESIM_WORKER_POLL_SECONDS": "0.05",
        "RESIM_API_TLS_CERT_FILE": str(pki.api.cert),
        "RESIM_API_TLS_KEY_FILE": str(pki.api.key),
        "RESIM_API_TLS_CLIENT_CA_FILE": str(pki.ca.pem),
        "RESIM_SMDP_CALLBACK_CLIENTS": json.dumps(
            [
                {
                    "requester_id": "smdp-emulator",
                    "sha256": sha256_of(pki.smdp_client.cert.read_bytes()),
                }
            ]
        ),
    }
    # The data resim and the SM-DP+ agree on: one brand, one line, one eSIM profile.
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_keys=SECRET_KEY,  # type: ignore[arg-type]
        smtp_port=mail.port,
    )
    engine = build_engine(settings, pool_size=3)
    ctx = build_context(settings, engine=engine)
    ctx.otp_generator = lambda: OTP
    seed.upsert_brand(
        ctx,
        seed.BrandSpec(
            "dk", "Nordlys Mobil", "DK", "DKK", "da", "Europe/Copenhagen",
            BrandPolicy(verification=email_code_alone()),
        ),
    )  # fmt: skip
    profile = iccid_with_check_digit("894501000000000901")
    seed.add_stock(
        ctx, brand_id="dk", profile_type="default", profiles=[(profile, "238010000000901")]
    )
    msisdn = "+4520100901"
    seed.add_line(
        ctx,
        seed.LineSpec(
            brand_id="dk", msisdn=msisdn, name="Kunde 901", email="kunde901@example.dk",
            iccid=iccid_with_check_digit("894501000000000902"), imsi="238010000000902",
        ),
    )  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    emulator = Process(
        "smdp-emulator",
        [
            "smdp-emulator", "--port", str(smdp_port),
            "--tls-cert", str(pki.smdp.cert), "--tls-key", str(pki.smdp.key),
            "--client-ca", str(pki.ca.pem),
            "--callback-url", api_url,
            "--callback-cert", str(pki.smdp_client.cert),
            "--callback-key", str(pki.smdp_client.key),
            "--callback-ca", str(pki.ca.pem),
        ],
        env, logs,
    )  # fmt: skip
    serve = Process("serve", ["serve", "--port", str(api_port)], env, logs)
    worker = Process("worker", ["worker"], env, logs)
    procs = [emulator, serve, worker]
    as_operator = client_context(pki.ca, pki.operator)
    as_browser = client_context(pki.ca, None)
    try:
        with (
            httpx.Client(base_url=smdp_url, verify=as_operator, timeout=10) as smdp,
            httpx.Client(base_url=api_url, verify=as_browser, timeout=10) as api,
        ):
            wait_for("the API", lambda: api.get("/health").status_code == 200, procs, 180)
            wait_for(
                "the SM-DP+", lambda: smdp.get("/emulator/health").status_code == 200, procs, 180
            )
            added = smdp.post(
                "/emulator/stock", json={"profile_type": "default", "iccids": [profile]}
            )
            assert added.status_code == 200, added.text
            opened = requests.open_request(ctx, msisdn=msisdn, reason="device_change")
            requests.submit_verification(ctx, opened.id, otp=OTP)

            def state() -> str:
                return str(queries.get_request_view(ctx, opened.id)["state"])

            wait_for("ready", lambda: state() == "ready", procs, 180)
            code = queries.activation_view(ctx, opened.id, reader="test", via="test")
            # An impostor without a certificate, with a token: refused, and its
            # token never reaches a log.
            refused = api.post(
                "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
                json={"header": {"functionRequesterIdentifier": "smdp-emulator"}},
                headers={"Authorization": f"Bearer {IMPOSTOR_TOKEN}"},
            )
            assert refused.status_code == 401
            installed = smdp.post(
                "/emulator/phone/install", json={"activation_code": code["qr_payload"]}
            )
            assert installed.status_code == 200, installed.text
            assert [c["httpStatus"] for c in installed.json()["callbacks"]] == [204, 204]
            wait_for("the cut-over", lambda: state() == "completed", procs, 180)
    finally:
        texts = {p.name: p.stop(signal.SIGTERM if p is worker else signal.SIGINT) for p in procs}
        engine.dispose()
    secrets = [
        OTP,
        code["matching_id"],
        code["activation_code"],
        IMPOSTOR_TOKEN,
        SECRET_KEY,
        pki.operator.key.read_text().splitlines()[1],
    ]
    events = {name: assert_clean_json_log(name, text, secrets) for name, text in texts.items()}
    names = {name: [e["event"] for e in evs] for name, evs in events.items()}
    assert "es2.callback.handled" in names["serve"]
    assert "es2.callback.unauthenticated" in names["serve"]
    assert "worker.started" in names["worker"]
    # The emulator's own request lines are events like any other.
    access = [e for e in events["smdp-emulator"] if e.get("logger") == "uvicorn.access"]
    assert any("/gsma/rsp2/es2plus/confirmOrder" in e["event"] for e in access), access


def test_the_emulator_with_console_logs_writes_one_line_per_request(tmp_path: Path) -> None:
    # The report: a ~95-line "--- Logging error ---" for every request.
    port = free_port()
    env = {**os.environ, "RESIM_DATA_DIR": str(tmp_path), "RESIM_LOG_FORMAT": "console"}
    emulator = Process("smdp-emulator", ["smdp-emulator", "--port", str(port)], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            wait_for("the SM-DP+", lambda: http.get("/emulator/health").is_success, [emulator], 60)
            http.post("/gsma/rsp2/es2plus/downloadOrder", json={})
            http.get("/emulator/profiles?state=Available")
    finally:
        text = emulator.stop()
    assert "Logging error" not in text and "Traceback" not in text, text[:3000]
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(ISO_LINE.match(line) for line in lines), lines
    requests_logged = [line for line in lines if "HTTP/1.1" in line]
    assert len(requests_logged) == 3  # health, downloadOrder, profiles: one line each
    assert not any("state=Available" in line for line in lines)  # query strings dropped


def test_the_demo_walkthrough_logs_cleanly(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(4)]
    env = {
        **os.environ,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": SECRET_KEY,
        "RESIM_LOG_FORMAT": "json",
        "RESIM_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports[0]}",
        "RESIM_SMDP_URL": f"http://127.0.0.1:{ports[1]}",
        "RESIM_SMTP_PORT": str(ports[2]),
        "RESIM_SMS_GATEWAY_URL": f"http://127.0.0.1:{ports[3]}/messages",
    }
    args = [
        "demo", "--walkthrough", "--lines-per-brand", "3",
        "--api-port", str(ports[0]), "--smdp-port", str(ports[1]),
        "--smtp-port", str(ports[2]), "--sms-port", str(ports[3]),
    ]  # fmt: skip
    done = subprocess.run(
        resim_command(*args), env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "walkthrough completed" in done.stdout
    assert_clean_json_log("demo", done.stderr.replace("stopping ...\n", ""), [SECRET_KEY])
    assert "Logging error" not in done.stdout and "Traceback" not in done.stdout


def sha256_of(cert_pem: bytes) -> str:
    """The certificate's SHA-256 fingerprint, as an operator computes it
    (``openssl x509 -noout -fingerprint -sha256``), in hex."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    return hashlib.sha256(der).hexdigest()
