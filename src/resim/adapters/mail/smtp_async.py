"""AsyncSmtpMailer: the AsyncMailer port over SMTP with aiosmtplib, reusing connections.

The worker's event loop sends many mails at once; opening a connection per
mail (TCP, greeting, EHLO, maybe STARTTLS and AUTH) costs more than the mail.
So this mailer keeps up to ``max_connections`` authenticated connections and
sends one message after another on each (RFC 5321 allows any number of mail
transactions per session). A connection idle longer than ``idle_seconds`` is
closed instead of reused (servers drop idle sessions, RFC 5321 4.5.3.2.7
suggests 5 minutes); one that failed in any way is closed, never reused. A
reused connection the server has closed meanwhile (a disconnect before any
reply to this message) is replaced once by a fresh one.

Messages are built by :func:`resim.adapters.mail.message.wire_message` (same
headers, Message-ID and checks as :class:`SmtpMailer`), and errors are mapped
exactly as there::

    OSError (refused, reset, DNS, TLS), timeout,     -> ExternalError(retryable=True,
    disconnect, unexpected greeting, any 4xx reply       code="SMTP_UNAVAILABLE")
    any 5xx reply (sender, recipient, data, auth),   -> ExternalError(retryable=False,
    STARTTLS or AUTH not offered by the server           code="SMTP_REJECTED")

Messages name the server and the reply code, never the reply text, the
recipient or the message (SEC-11). Use from one event loop; :meth:`aclose`
closes the idle connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiosmtplib

from resim.adapters.mail.message import WireMessage, wire_message
from resim.adapters.mail.smtp import SmtpMailer, reply_error
from resim.errors import ExternalError
from resim.services.ports import OutgoingMail


class AsyncSmtpMailer:
    """See the module docstring; the settings mean what they mean for ``SmtpMailer``."""

    def __init__(
        self, settings: SmtpMailer, *, max_connections: int = 8, idle_seconds: float = 30.0
    ) -> None:
        self._smtp = settings  # server, TLS, login, timeout, EHLO name, clock
        self._idle_seconds = idle_seconds
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self.connections_opened = 0  # for tests and the bench: reuse is visible

    def __repr__(self) -> str:
        return f"AsyncSmtpMailer({self._smtp!r})"

    async def send(self, mail: OutgoingMail) -> None:
        """Deliver ``mail`` or raise ExternalError (retryable set)."""
        smtp = self._smtp
        now = smtp.clock.now() if smtp.clock is not None else None
        wire = wire_message(mail, sender=smtp.sender, now=now)
        where = f"{smtp.host}:{smtp.port}"
        async with self._slots:
            client = self._take_idle()
            reused = client is not None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await _send(client, wire)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    # The server closed the idle session before we spoke: once more,
                    # on a fresh connection.
                    _drop(client)
                    client = await self._connect()
                    await _send(client, wire)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                _drop(client)
                refused = exc.recipients or [aiosmtplib.SMTPRecipientRefused(550, "", mail.to)]
                worst = max(refused, key=lambda r: r.code)
                raise reply_error(
                    where, "refused the recipient", worst.code, worst.message
                ) from None
            except aiosmtplib.SMTPSenderRefused as exc:
                _drop(client)
                raise reply_error(where, "refused the sender", exc.code, exc.message) from None
            except aiosmtplib.SMTPDataError as exc:
                _drop(client)
                raise reply_error(where, "refused the message", exc.code, exc.message) from None
            except aiosmtplib.SMTPAuthenticationError as exc:
                _drop(client)
                raise reply_error(where, "refused the login", exc.code, exc.message) from None
            except aiosmtplib.SMTPNotSupported:
                _drop(client)
                raise ExternalError(
                    f"SMTP server {where} does not offer STARTTLS or AUTH as configured",
                    retryable=False,
                    code="SMTP_REJECTED",
                ) from None
            except aiosmtplib.SMTPConnectResponseError as exc:
                _drop(client)
                raise ExternalError(
                    f"SMTP server {where} did not greet us ({exc.code})",
                    retryable=True,
                    code="SMTP_UNAVAILABLE",
                ) from None
            except aiosmtplib.SMTPResponseException as exc:
                _drop(client)
                raise reply_error(where, "answered", exc.code, exc.message) from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                _drop(client)
                raise ExternalError(
                    f"SMTP server {where} unreachable ({type(exc).__name__})",
                    retryable=True,
                    code="SMTP_UNAVAILABLE",
                ) from None
            except BaseException:
                _drop(client)
                raise
            self._idle.append((client, time.monotonic()))

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        """A connection that was idle less than ``idle_seconds`` (newest first)."""
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if now - since < self._idle_seconds and client.is_connected:
                return client
            _drop(client)
        return None

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = self._smtp
        client = aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            local_hostname=smtp.local_hostname,
            timeout=smtp.timeout,
            use_tls=smtp.use_ssl,
            start_tls=smtp.use_starttls,
            tls_context=smtp.tls_context() if (smtp.use_ssl or smtp.use_starttls) else None,
        )
        await client.connect()
        self.connections_opened += 1
        if smtp.username is not None and smtp.password is not None:
            try:
                await client.login(smtp.username, smtp.password.get_secret_value())
            except BaseException:
                _drop(client)
                raise
        return client

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client, _since in idle:
            try:
                await client.quit()
            except Exception:
                _drop(client)


def _drop(client: aiosmtplib.SMTP | None) -> None:
    """Close a connection without a goodbye (it failed, or it is stale)."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


async def _send(client: aiosmtplib.SMTP, wire: WireMessage) -> None:
    await client.sendmail(wire.envelope_from, [wire.to], wire.data, mail_options=wire.mail_options)
