"""SmtpMailer: the Mailer port over SMTP (RFC 5321) with the standard library.

Errors, mapped at this boundary (services never see smtplib)::

    OSError (refused, reset, DNS, TLS), timeout,     -> ExternalError(retryable=True,
    disconnect, unexpected greeting, any 4xx reply       code="SMTP_UNAVAILABLE")
    any 5xx reply (sender, recipient, data, auth),   -> ExternalError(retryable=False,
    STARTTLS or AUTH not offered by the server           code="SMTP_REJECTED")

A refused recipient is classified by its reply: ``550`` (no such mailbox) is
permanent, ``450``/``451`` (mailbox busy, greylisting) is retryable. Error
messages name the server and the reply code (with its enhanced status code such
as ``5.1.1``) but never the reply text, the recipient or the message: a server
may quote any of them back, and bodies can hold one-time codes (SEC-11). The
original exception is not chained for the same reason.

:meth:`SmtpMailer.asynchronous` gives the worker's event loop an
:class:`~resim.adapters.mail.smtp_async.AsyncSmtpMailer` with the same
settings, which keeps connections open between mails.

Thread safety: every :meth:`SmtpMailer.send` opens, uses and closes its own
connection, and the mailer holds no mutable state, so one instance may be
shared by any number of threads. Mail volume is a few messages per request, so
the extra handshake costs nothing that matters.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from typing import TYPE_CHECKING

from pydantic import SecretStr

from resim.adapters.mail.message import wire_message
from resim.errors import ExternalError, InvalidInput
from resim.services.ports import Clock, OutgoingMail

if TYPE_CHECKING:
    from resim.adapters.mail.smtp_async import AsyncSmtpMailer

_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class SmtpMailer:
    """Sends each message over a fresh SMTP connection (see the module docstring).

    ``use_ssl`` is implicit TLS (port 465); ``use_starttls`` upgrades a plain
    connection (port 587) and fails if the server does not offer STARTTLS, so
    nothing goes out in clear by accident. Login happens only when ``username``
    is set. ``local_hostname`` is the EHLO name (default: this host's FQDN, which
    costs a DNS lookup per send); ``ssl_context`` replaces the default context that
    verifies the server's certificate against the system's CAs.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        use_starttls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if use_ssl and use_starttls:
            raise InvalidInput("choose either implicit TLS (use_ssl) or STARTTLS, not both")
        if (username is None) != (password is None):
            raise InvalidInput("SMTP username and password go together")
        self.host = host
        self.port = port
        self.sender = sender
        self.use_starttls = use_starttls
        self.use_ssl = use_ssl
        self.username = username
        self.password = password  # SecretStr: never shown by repr or str
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname
        self.clock = clock

    def __repr__(self) -> str:
        return (
            f"SmtpMailer({self.host!r}, {self.port}, sender={self.sender!r}, "
            f"use_starttls={self.use_starttls}, use_ssl={self.use_ssl}, "
            f"username={self.username!r})"
        )

    def asynchronous(self) -> AsyncSmtpMailer:
        """This mailer for an event loop: aiosmtplib, connections reused (the
        caller closes it with ``aclose``)."""
        from resim.adapters.mail.smtp_async import AsyncSmtpMailer

        return AsyncSmtpMailer(self)

    def send(self, mail: OutgoingMail) -> None:
        """Deliver ``mail`` to the SMTP server or raise ExternalError (retryable set)."""
        now = self.clock.now() if self.clock is not None else None
        wire = wire_message(mail, sender=self.sender, now=now)
        where = f"{self.host}:{self.port}"
        try:
            with self._connect() as client:
                if self.use_starttls:
                    client.starttls(context=self.tls_context())
                if self.username is not None and self.password is not None:
                    client.login(self.username, self.password.get_secret_value())
                client.sendmail(
                    wire.envelope_from, [wire.to], wire.data, mail_options=wire.mail_options
                )
        except smtplib.SMTPRecipientsRefused as exc:
            # One recipient per mail: all refused. Classify by the worst reply.
            codes = [code for code, _ in exc.recipients.values()] or [550]
            replies = [reply for _, reply in exc.recipients.values()] or [b""]
            worst = max(range(len(codes)), key=lambda i: codes[i])
            raise reply_error(
                where, "refused the recipient", codes[worst], replies[worst]
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise reply_error(where, "refused the sender", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPDataError as exc:
            raise reply_error(where, "refused the message", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise reply_error(where, "refused the login", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPConnectError as exc:
            raise ExternalError(
                f"SMTP server {where} did not greet us ({exc.smtp_code})",
                retryable=True,
                code="SMTP_UNAVAILABLE",
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise ExternalError(
                f"SMTP server {where} does not offer STARTTLS or AUTH as configured",
                retryable=False,
                code="SMTP_REJECTED",
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise reply_error(where, "answered", exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            # OSError covers refused/reset connections, DNS, TLS errors and timeouts.
            raise ExternalError(
                f"SMTP server {where} unreachable ({type(exc).__name__})",
                retryable=True,
                code="SMTP_UNAVAILABLE",
            ) from None

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self.tls_context(),
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def tls_context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()


def reply_error(where: str, what: str, code: int, reply: bytes | str) -> ExternalError:
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else reply
    match = _ENHANCED_STATUS.match(raw)
    detail = f"{code} {match.group(1).decode()}" if match else str(code)
    if 500 <= code < 600:
        return ExternalError(
            f"SMTP server {where} {what} ({detail})", retryable=False, code="SMTP_REJECTED"
        )
    # 4xx, and odd codes (smtplib uses -1 for a broken reply): worth another try.
    return ExternalError(
        f"SMTP server {where} {what} for now ({detail})",
        retryable=True,
        code="SMTP_UNAVAILABLE",
    )
