"""HttpSmsGateway: the SmsGateway port over a JSON HTTP API (httpx).

Wire format: ``POST <url>`` with ``Authorization: Bearer <token>`` and the body
``{"id", "to", "text", "sender"}``. ``id`` is the message's idempotency key;
the gateway answers a repeated id with 2xx and sends nothing new.

Errors, mapped at this boundary (services never see httpx)::

    transport error, timeout, 429, any 5xx    -> ExternalError(retryable=True,
                                                   code="SMS_UNAVAILABLE")
    401, 403 (token), 404, 405 (URL)          -> ExternalError(retryable=True,
                                                   code="SMS_GATEWAY_MISCONFIGURED")
    any other 4xx (bad number, bad text)      -> ExternalError(retryable=False,
                                                   code="SMS_REJECTED")
    a message that is not valid to send       -> InvalidInput (nothing sent)

A wrong token or URL is resim's configuration, not the message: every text
would be refused the same way, so it is retried with back-off like an outage
(the peer circuit pauses the texts and alerts, see services.peer_circuit),
and the texts go out once the settings are fixed, instead of each dying at once.

Messages name the gateway host and the status code, never the number, the
text or the gateway's reply body (a gateway may quote the text back, and a
notice carries the "this was not me" link). Nothing here logs.

Thread safety: one ``httpx.Client`` (a connection pool) shared by all threads.
:class:`AsyncHttpSmsGateway` is the same for an event loop, on
:class:`~resim.adapters.http_keepalive.KeepAliveClient` (h11 on asyncio
streams, a sixth of httpx's CPU per text; the reply's body is read and
dropped) unless a transport is injected (tests' ``httpx.MockTransport``) or
a proxy is configured in the environment (``HTTP_PROXY``/``HTTPS_PROXY``/
``ALL_PROXY``, which httpx honours): those keep ``httpx.AsyncClient``.
The request is the same either way: the headers
and the JSON body are built as httpx builds them (compact, UTF-8).
"""

from __future__ import annotations

import json
import re

import httpx
from pydantic import SecretStr

from resim.adapters.http_keepalive import KeepAliveClient, proxied
from resim.errors import ExternalError, InvalidInput
from resim.services.ports import OutgoingSms

_E164 = re.compile(r"\+[1-9]\d{6,14}")
MAX_TEXT = 1600  # ten concatenated parts; notices are one or two
MISCONFIGURED = frozenset({401, 403, 404, 405})  # wrong token or wrong URL


def check_message(message: OutgoingSms) -> None:
    """Refuse what no gateway should be asked to send (shared with the fake)."""
    if not _E164.fullmatch(message.to):
        raise InvalidInput("an SMS needs one E.164 number (+ and digits)", code="INVALID_MSISDN")
    if not message.id.strip() or any(c.isspace() for c in message.id):
        raise InvalidInput("an SMS needs an id without whitespace", code="INVALID_SMS_ID")
    if not message.text.strip() or len(message.text) > MAX_TEXT:
        raise InvalidInput(f"an SMS text must be 1..{MAX_TEXT} characters", code="INVALID_SMS")


def status_error(host: str, status: int) -> ExternalError | None:
    """The error for a gateway's HTTP status (None for 2xx); see the module doc."""
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        return ExternalError(
            f"SMS gateway {host} answered {status}", retryable=True, code="SMS_UNAVAILABLE"
        )
    if status in MISCONFIGURED:
        return ExternalError(
            f"SMS gateway {host} refused resim's request ({status}): check"
            " RESIM_SMS_GATEWAY_URL and RESIM_SMS_GATEWAY_TOKEN",
            retryable=True,
            code="SMS_GATEWAY_MISCONFIGURED",
        )
    return ExternalError(
        f"SMS gateway {host} refused the message ({status})",
        retryable=False,
        code="SMS_REJECTED",
    )


class _SmsCore:
    """Settings, request and error mapping shared by the sync and async gateway."""

    def __init__(self, url: str, *, token: SecretStr | None, sender: str, timeout: float) -> None:
        self._url = url
        self._host = httpx.URL(url).host or "sms-gateway"
        self._token = token
        self._sender = sender
        self._timeout = timeout
        # Built once: the token does not change while the gateway lives.
        self._headers = {"Accept": "application/json"}
        if token is not None and token.get_secret_value():
            self._headers["Authorization"] = f"Bearer {token.get_secret_value()}"

    def _request(self, message: OutgoingSms) -> tuple[dict[str, str], dict[str, str]]:
        check_message(message)
        body = {"id": message.id, "to": message.to, "text": message.text, "sender": self._sender}
        return self._headers, body

    def _outcome(self, sent: httpx.Response | httpx.HTTPError | int) -> None:
        if isinstance(sent, httpx.TimeoutException):
            raise ExternalError(
                f"SMS gateway {self._host} timed out", retryable=True, code="SMS_UNAVAILABLE"
            ) from None
        if isinstance(sent, httpx.HTTPError):
            raise ExternalError(
                f"SMS gateway {self._host} unreachable ({type(sent).__name__})",
                retryable=True,
                code="SMS_UNAVAILABLE",
            ) from None
        status = sent if isinstance(sent, int) else sent.status_code
        error = status_error(self._host, status)
        if error is not None:
            raise error


class HttpSmsGateway(_SmsCore):
    def __init__(
        self,
        url: str,
        *,
        token: SecretStr | None = None,
        sender: str = "resim",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token=token, sender=sender, timeout=timeout)
        self._transport = transport
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def send(self, message: OutgoingSms) -> None:
        headers, body = self._request(message)
        sent: httpx.Response | httpx.HTTPError
        try:
            sent = self._client.post(self._url, json=body, headers=headers)
        except httpx.TransportError as exc:
            sent = exc
        self._outcome(sent)

    def close(self) -> None:
        self._client.close()

    def asynchronous(self) -> AsyncHttpSmsGateway | None:
        """This gateway on ``httpx.AsyncClient`` (the caller closes it); None when
        the injected transport cannot serve async calls."""
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            return None
        return AsyncHttpSmsGateway(
            self._url,
            token=self._token,
            sender=self._sender,
            timeout=self._timeout,
            transport=transport,
        )


class AsyncHttpSmsGateway(_SmsCore):
    """:class:`resim.services.ports.AsyncSmsGateway`: the same wire format and
    errors as :class:`HttpSmsGateway`, on one ``httpx.AsyncClient`` (keep-alive)."""

    def __init__(
        self,
        url: str,
        *,
        token: SecretStr | None = None,
        sender: str = "resim",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token=token, sender=sender, timeout=timeout)
        self._lean: KeepAliveClient | None = None
        self._client: httpx.AsyncClient | None = None
        if transport is None and not proxied(url):
            # A repeated message id is dropped by the gateway: resending a text
            # whose kept connection died unanswered cannot duplicate it.
            wire_headers = [
                (name.encode("ascii"), value.encode("latin-1"))
                for name, value in {
                    **self._headers,
                    "Content-Type": "application/json",
                    "User-Agent": "resim",
                }.items()
            ]
            self._lean = KeepAliveClient(
                url, timeout=timeout, headers=wire_headers, resend_unanswered=True
            )
        else:
            self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, message: OutgoingSms) -> None:
        headers, body = self._request(message)
        sent: httpx.Response | httpx.HTTPError | int
        try:
            if self._lean is not None:
                # As httpx's json= encodes it (httpx._content.encode_json).
                data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
                reply = await self._lean.request(
                    b"POST",
                    self._lean.path,
                    (),
                    data.encode("utf-8"),
                    keep_body=False,
                )
                sent = reply.status_code
            else:
                assert self._client is not None
                sent = await self._client.post(self._url, json=body, headers=headers)
        except httpx.TransportError as exc:
            sent = exc
        self._outcome(sent)

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        if self._client is not None:
            await self._client.aclose()
