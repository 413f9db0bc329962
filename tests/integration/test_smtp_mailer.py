"""SmtpMailer over real SMTP on loopback: delivery, error classes, TLS and login."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from resim.adapters.mail.capture import MailCapture
from resim.adapters.mail.fake import FakeMailer
from resim.adapters.mail.smtp import SmtpMailer
from resim.errors import ExternalError
from resim.services.ports import OutgoingMail

pytestmark = pytest.mark.integration

SENDER = "Nordlys Mobil <no-reply@nordlys.test>"
OTP = "731942"


def outgoing(to: str = "kari@example.com", n: int = 1, **extra: Any) -> OutgoingMail:
    return OutgoingMail(
        to=to,
        subject=f"Din kode · {n}",
        text=f"Hei Kari,\nkoden din er {OTP}.\n",
        html=f"<p>Koden din er <b>{OTP}</b>.</p>",
        message_id=f"req-{n}.otp@resim.test",
        language="nb",
        **extra,
    )


def mailer(port: int, **options: Any) -> SmtpMailer:
    options.setdefault("timeout", 5.0)
    return SmtpMailer("127.0.0.1", port, sender=SENDER, local_hostname="test.local", **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[MailCapture]:
    refuse = {
        "gone@example.com": "550 5.1.1 <gone@example.com> unknown user",
        "busy@example.com": "450 4.2.1 Mailbox busy",
    }
    with MailCapture(tmp_path / "mail", refuse=refuse) as cap:
        yield cap


class TestDelivery:
    def test_message_arrives_with_its_message_id_subject_body_and_language(
        self, capture: MailCapture
    ) -> None:
        mailer(capture.port).send(outgoing(n=7))
        [got] = capture.messages()
        assert got.message_id == "req-7.otp@resim.test"
        assert got.subject == "Din kode · 7"
        assert got.to == "kari@example.com"
        assert got.recipients == ("kari@example.com",)
        assert got.text == f"Hei Kari,\nkoden din er {OTP}.\n"
        assert got.html is not None and f"<b>{OTP}</b>" in got.html
        assert got.language == "nb"
        assert got.path.read_bytes().count(b"Message-ID: <req-7.otp@resim.test>") == 1

    def test_a_retry_sends_the_same_message_id_again(self, capture: MailCapture) -> None:
        m = mailer(capture.port)
        m.send(outgoing(n=3))
        m.send(outgoing(n=3))
        assert [x.message_id for x in capture.messages()] == ["req-3.otp@resim.test"] * 2

    def test_one_mailer_can_be_shared_by_threads(self, capture: MailCapture) -> None:
        # A generous timeout: the capture fsyncs every message, and on a loaded
        # machine 30 of them in parallel took longer than 5 s (smtplib then reports
        # its read timeout as SMTPServerDisconnected).
        m = mailer(capture.port, timeout=30.0)
        errors: list[BaseException] = []

        def worker(k: int) -> None:
            try:
                for i in range(5):
                    m.send(outgoing(to=f"u{k}@example.com", n=k * 100 + i))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        got = capture.messages()
        assert len(got) == 30
        assert len({x.message_id for x in got}) == 30
        assert [x.seq for x in got] == list(range(1, 31))


class TestErrorClassification:
    def test_a_recipient_refused_with_5xx_is_permanent(self, capture: MailCapture) -> None:
        with pytest.raises(ExternalError) as info:
            mailer(capture.port).send(outgoing(to="gone@example.com"))
        error = info.value
        assert error.retryable is False
        assert error.code == "SMTP_REJECTED"
        assert "550 5.1.1" in error.message
        assert "gone@" not in error.message and OTP not in error.message
        assert error.__cause__ is None
        assert capture.messages() == []

    def test_a_recipient_refused_with_4xx_is_retryable(self, capture: MailCapture) -> None:
        with pytest.raises(ExternalError) as info:
            mailer(capture.port).send(outgoing(to="busy@example.com"))
        assert info.value.retryable is True
        assert info.value.code == "SMTP_UNAVAILABLE"
        assert "450 4.2.1" in info.value.message

    def test_connection_refused_is_retryable(self) -> None:
        with pytest.raises(ExternalError) as info:
            mailer(free_port()).send(outgoing())
        assert info.value.retryable is True
        assert info.value.code == "SMTP_UNAVAILABLE"
        assert "ConnectionRefusedError" in info.value.message

    def test_a_server_that_never_answers_times_out_as_retryable(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
            port = silent.getsockname()[1]
            started = time.monotonic()
            with pytest.raises(ExternalError) as info:
                mailer(port, timeout=0.5).send(outgoing())
            waited = time.monotonic() - started
        assert info.value.retryable is True
        assert info.value.code == "SMTP_UNAVAILABLE"
        assert 0.4 <= waited < 5

    @pytest.mark.parametrize(
        ("reply", "retryable"),
        [
            (f"554 5.7.1 Message rejected: it contains {OTP}", False),
            ("451 4.3.0 Temporary failure, try again", True),
        ],
    )
    def test_data_replies_are_classified_by_code_and_never_quoted(
        self, reply: str, retryable: bool
    ) -> None:
        class Refusing:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                return reply

        server = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
        with running(server) as port, pytest.raises(ExternalError) as info:
            mailer(port).send(outgoing())
        assert info.value.retryable is retryable
        assert reply[:3] in info.value.message
        assert OTP not in info.value.message and "try again" not in info.value.message

    def test_starttls_required_but_not_offered_is_permanent(self, capture: MailCapture) -> None:
        with pytest.raises(ExternalError) as info:
            mailer(capture.port, use_starttls=True).send(outgoing())
        assert info.value.retryable is False
        assert capture.messages() == []


class TestTlsAndLogin:
    def test_starttls_and_login_deliver(self, tls: TlsFiles, tmp_path: Path) -> None:
        received: list[bytes] = []
        with running(tls.controller(received)) as port:
            mailer(
                port,
                use_starttls=True,
                ssl_context=tls.client_context(),
                username="resim",
                password=SecretStr("s3cret-pass"),
            ).send(outgoing())
        assert len(received) == 1 and b"Message-ID: <req-1.otp@resim.test>" in received[0]

    def test_a_wrong_password_is_permanent(self, tls: TlsFiles) -> None:
        with running(tls.controller([])) as port, pytest.raises(ExternalError) as info:
            mailer(
                port,
                use_starttls=True,
                ssl_context=tls.client_context(),
                username="resim",
                password=SecretStr("wrong-pass"),
            ).send(outgoing())
        assert info.value.retryable is False
        assert "535" in info.value.message
        assert "wrong-pass" not in info.value.message

    def test_an_untrusted_certificate_fails_and_sends_nothing(self, tls: TlsFiles) -> None:
        received: list[bytes] = []
        with running(tls.controller(received)) as port, pytest.raises(ExternalError) as info:
            mailer(port, use_starttls=True).send(outgoing())  # system CAs only
        assert info.value.code == "SMTP_UNAVAILABLE"
        assert received == []


class TestContract:
    """What the services rely on holds for the fake and the real adapter alike."""

    @pytest.fixture(params=["fake", "smtp"])
    def pair(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[tuple[Any, Callable[[], list[str]]]]:
        if request.param == "fake":
            fake = FakeMailer()
            yield fake, lambda: [m.message_id for m in fake.sent]
            return
        with MailCapture(tmp_path / "contract") as cap:
            yield mailer(cap.port), lambda: [m.message_id for m in cap.messages()]

    def test_an_accepted_mail_is_delivered_once_with_its_message_id(
        self, pair: tuple[Any, Callable[[], list[str]]]
    ) -> None:
        sender, delivered = pair
        assert sender.send(outgoing(n=11)) is None
        assert delivered() == ["req-11.otp@resim.test"]


# ---------------------------------------------------------------- helpers


class running:
    """Start an aiosmtpd controller for a ``with`` block; yields its port."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def __enter__(self) -> int:
        self.controller.start()
        return int(self.controller.port)

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and servers or clients that use it."""

    def __init__(self, directory: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "resim test SMTP")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert = directory / "cert.pem"
        self.key = directory / "key.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def controller(self, received: list[bytes]) -> Controller:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(self.cert, self.key)

        class Keep:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                received.append(envelope.original_content)
                return "250 OK"

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and data.login == b"resim"
                and data.password == b"s3cret-pass"
            )
            return AuthResult(success=ok, handled=False)  # handled=True would stay silent

        return Controller(
            Keep(),
            hostname="127.0.0.1",
            port=free_port(),
            server_hostname="tls-test",
            tls_context=server_context,
            require_starttls=True,
            authenticator=authenticate,
            auth_require_tls=True,
        )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles(tmp_path_factory.mktemp("tls"))
