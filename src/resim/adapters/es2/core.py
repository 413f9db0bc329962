"""What the sync and the async ES2+ client share: settings, request bodies, outcomes.

:class:`Es2Core` has no I/O: :class:`~resim.adapters.es2.client.HttpEs2Client`
(httpx.Client) and :class:`~resim.adapters.es2.client_async.AsyncHttpEs2Client`
(h11 keep-alive, or httpx.AsyncClient) send the bodies it builds and hand every
outcome (an :class:`HttpAnswer` or an httpx error) back to it.
Errors are mapped here and only here (see :mod:`resim.adapters.es2.errors` for the tree):

- Failed / Expired in the ES2+ header -> :class:`Es2StatusError`
  (retryable only for 1.2/4.x); Failed without statusCodeData ->
  ``ExternalError(code="SMDP_PROTOCOL_ERROR", retryable=False)``;
- timeout, connection error, HTTP 5xx, 408, 425, 429, a body that is not an
  ES2+ response -> ``ExternalError(code="SMDP_UNAVAILABLE", retryable=True)``;
  a failed TLS handshake (server certificate not trusted, client certificate
  refused) is a connection error too: the message names the TLS cause, and a
  job keeps retrying so that fixing the certificates lets it finish;
- a 2xx without an ``X-Admin-Protocol: gsma/rsp/v2.*`` header ->
  ``ExternalError(code="SMDP_PROTOCOL_MISMATCH", retryable=False)``: the peer is
  not an SGP.22 v2 SM-DP+ (wrong URL, a proxy's page, another protocol
  version); retrying will not fix a configuration error, and one real ES2+
  client rejects such responses the same way;
- any other HTTP status -> ``ExternalError(code="SMDP_HTTP_ERROR", retryable=False)``
  unless its body is an ES2+ error, which wins.

Invalid arguments (a malformed ICCID or EID) raise
:class:`resim.errors.InvalidInput` before anything is sent.

Nothing here logs or raises the confirmation code or the matching ID; the
SM-DP+'s free text is redacted of both before it reaches an error message.
"""

from __future__ import annotations

import abc
import json
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import httpx
import structlog
from pydantic import ValidationError

from resim.adapters.es2 import wire
from resim.adapters.es2.errors import (
    SMDP_HTTP_ERROR,
    SMDP_PROTOCOL_ERROR,
    SMDP_PROTOCOL_MISMATCH,
    Es2StatusError,
    redact,
    smdp_unavailable,
)
from resim.domain.identifiers import normalize_eid, normalize_iccid
from resim.errors import ExternalError, InvalidInput
from resim.services.ports import ConfirmOrderResult, DownloadOrderResult, FinalProfileStatus

R = TypeVar("R", bound=wire.Es2Response)

_RETRYABLE_HTTP = frozenset({408, 425, 429})


class HttpAnswer(Protocol):
    """What is read of a reply: ``httpx.Response`` and the keep-alive client's
    ``Reply`` both are one. ``headers.get`` takes a lower-case name."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...


def _ssl_context(
    client_cert: tuple[str, str] | None, ca_bundle: str | None, verify: bool
) -> ssl.SSLContext:
    """TLS for ES2+: server verified against ``ca_bundle`` (or the system store),
    client certificate presented when given (SGP.22 mutual TLS)."""
    ctx = ssl.create_default_context(cafile=ca_bundle)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        ctx.load_cert_chain(certfile=client_cert[0], keyfile=client_cert[1])
    return ctx


class Es2Core(abc.ABC):
    """What the sync and the async client share: settings, request bodies, and
    the mapping of every outcome (the module docstring); no I/O."""

    def __init__(
        self,
        base_url: str,
        requester_id: str,
        *,
        timeout: float = 10.0,
        transport: object | None = None,
        client_cert: tuple[str, str] | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        max_connections: int = 200,
    ) -> None:
        self.requester_id = requester_id
        self._base_url = base_url
        self._timeout = timeout
        self._client_cert = client_cert
        self._ca_bundle = ca_bundle
        self._verify = verify
        self._max_connections = max_connections
        https = base_url.lower().startswith("https://")
        if transport is None and not https and (client_cert is not None or ca_bundle):
            # These settings only mean something over TLS; ignoring them would
            # send ES2+ (EIDs, confirmation codes) in clear text to a peer the
            # operator believes is authenticated.
            raise ValueError("client_cert and ca_bundle need an https:// SM-DP+ URL")
        self._tls: ssl.SSLContext | bool = (
            _ssl_context(client_cert, ca_bundle, verify) if transport is None and https else True
        )
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._log = structlog.get_logger().bind(peer="smdp", requester_id=requester_id)
        self._transport = transport
        self._open(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            verify=self._tls,
            limits=self._limits,
            headers=wire.es2_headers(),
            follow_redirects=False,
        )

    @abc.abstractmethod
    def _open(self, **http_options: Any) -> None:
        """Create the client's httpx client with these options (each client its own kind)."""

    # ------------------------------------------------------------ bodies and results

    def _download_body(
        self, call_id: str, iccid: str | None, profile_type: str | None, eid: str | None
    ) -> tuple[wire.DownloadOrderRequest, str | None]:
        if iccid is None and profile_type is None:
            raise InvalidInput("downloadOrder needs an ICCID or a profile type")
        clean = normalize_iccid(iccid) if iccid is not None else None
        body = wire.DownloadOrderRequest(
            header=self._header(call_id),
            iccid=wire.pad_iccid(clean) if clean else None,
            profile_type=profile_type,
            eid=normalize_eid(eid) if eid is not None else None,
        )
        return body, clean

    def _download_result(
        self, resp: wire.DownloadOrderResponse, call_id: str
    ) -> DownloadOrderResult:
        try:
            got = normalize_iccid(resp.iccid or "")
        except InvalidInput:
            raise self._bad_response(wire.DOWNLOAD_ORDER, call_id, "no valid iccid") from None
        return DownloadOrderResult(iccid=got)

    def _confirm_body(
        self,
        call_id: str,
        iccid: str,
        release_flag: bool,
        matching_id: str | None,
        eid: str | None,
        confirmation_code: str | None,
        smds_address: str | None,
    ) -> tuple[wire.ConfirmOrderRequest, str]:
        clean = normalize_iccid(iccid)
        body = wire.ConfirmOrderRequest(
            header=self._header(call_id),
            iccid=wire.pad_iccid(clean),
            release_flag=release_flag,
            matching_id=matching_id,
            eid=normalize_eid(eid) if eid is not None else None,
            confirmation_code=confirmation_code,
            smds_address=smds_address,
        )
        return body, clean

    def _confirm_result(self, resp: wire.ConfirmOrderResponse, call_id: str) -> ConfirmOrderResult:
        if resp.matching_id is None:  # mandatory; empty is valid (SGP.22 4.1, EID-bound)
            raise self._bad_response(wire.CONFIRM_ORDER, call_id, "no matchingId")
        return ConfirmOrderResult(
            matching_id=resp.matching_id, smdp_address=resp.smdp_address, eid=resp.eid
        )

    def _cancel_body(
        self,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None,
        eid: str | None,
    ) -> tuple[wire.CancelOrderRequest, str]:
        clean = normalize_iccid(iccid)
        body = wire.CancelOrderRequest(
            header=self._header(call_id),
            iccid=wire.pad_iccid(clean),
            final_profile_status_indicator=final_profile_status,
            matching_id=matching_id,
            eid=normalize_eid(eid) if eid is not None else None,
        )
        return body, clean

    def _header(self, call_id: str) -> wire.RequestHeader:
        return wire.RequestHeader(
            function_requester_identifier=self.requester_id, function_call_identifier=call_id
        )

    def _bad_response(self, function: str, call_id: str, why: str) -> ExternalError:
        """A success answer lacking its mandatory output: retryable, like any garbled reply."""
        self._log.warning(
            "es2.call.failed", function=function, call_id=call_id, code="SMDP_UNAVAILABLE",
            reason=f"response has {why}",
        )  # fmt: skip
        return smdp_unavailable(function, f"response has {why}")

    def _conclude(
        self,
        function: str,
        call_id: str,
        iccid: str | None,
        started: float,
        sent: HttpAnswer | httpx.HTTPError,
        response_model: type[R],
        secrets: list[str | None],
        no_content: bool,
    ) -> R:
        """Map and log the outcome of one POST (``sent``: its response or its
        transport error); see the module docstring.

        ``no_content``: the function has no output data, so an HTTP 204 with no
        body is read as success (some SM-DP+ answer so; SGP.22 6.5.1 sends a header).
        """
        log = self._log.bind(function=function, call_id=call_id, iccid=iccid)
        try:
            resp = self._classify(function, sent, secrets, no_content)
            parsed = response_model.model_validate(resp) if resp is not None else None
        except Es2StatusError as exc:
            log.warning(
                "es2.call.refused",
                status=exc.status,
                subject_code=exc.subject_code,
                reason_code=exc.reason_code,
                retryable=exc.retryable,
                duration_ms=_ms(started),
            )
            raise
        except ExternalError as exc:
            log.warning(
                "es2.call.failed",
                code=exc.code,
                reason=exc.message,
                retryable=exc.retryable,
                duration_ms=_ms(started),
            )
            raise
        except ValidationError:
            log.warning("es2.call.failed", code="SMDP_UNAVAILABLE", reason="bad response fields")
            raise smdp_unavailable(function, "response fields are not valid ES2+") from None
        log.info("es2.call.succeeded", duration_ms=_ms(started))
        if parsed is None:
            return response_model.model_validate({"header": wire.dump(wire.success_header())})
        return parsed

    def _classify(
        self,
        function: str,
        sent: HttpAnswer | httpx.HTTPError,
        secrets: list[str | None],
        no_content: bool,
    ) -> dict[str, Any] | None:
        """Classify; returns the JSON of a success, None for an empty 204."""
        if isinstance(sent, httpx.TimeoutException):
            raise smdp_unavailable(function, f"no answer within {self._timeout:g} s") from None
        if isinstance(sent, httpx.HTTPError):
            raise smdp_unavailable(function, _transport_failure(sent)) from None
        resp = sent
        status = resp.status_code
        if status >= 500 or status in _RETRYABLE_HTTP:
            raise smdp_unavailable(function, f"HTTP {status}")
        if status == 204 and no_content and not resp.content:
            return None
        data = _json_object(resp)
        if 200 <= status < 300:
            if not wire.admin_protocol_ok(resp.headers.get(wire.ADMIN_PROTOCOL_HEADER.lower())):
                raise ExternalError(
                    f"SM-DP+ answered {function} without X-Admin-Protocol gsma/rsp/v2.*",
                    retryable=False,
                    code=SMDP_PROTOCOL_MISMATCH,
                )
            if data is None:
                raise smdp_unavailable(function, "response is not an ES2+ JSON object")
        header = _header_of(data)
        if header is not None:
            exec_status = header.function_execution_status
            if exec_status.status in (wire.FAILED, wire.EXPIRED):
                code_data = exec_status.status_code_data
                if code_data is None and exec_status.status == wire.FAILED:
                    # A protocol violation, not a passing state: permanent.
                    raise ExternalError(
                        f"SM-DP+ answered Failed to {function} without statusCodeData",
                        retryable=False,
                        code=SMDP_PROTOCOL_ERROR,
                    )
                if code_data is None:
                    raise smdp_unavailable(function, f"{exec_status.status} without statusCodeData")
                raise Es2StatusError(
                    function=function,
                    status=exec_status.status,
                    subject_code=code_data.subject_code,
                    reason_code=code_data.reason_code,
                    peer_message=redact(code_data.message, secrets),
                    subject_identifier=code_data.subject_identifier,
                )
        if not 200 <= status < 300:
            raise ExternalError(
                f"SM-DP+ answered {function} with HTTP {status}",
                retryable=False,
                code=SMDP_HTTP_ERROR,
            )
        if header is None or header.function_execution_status.status not in wire.SUCCESS_STATUSES:
            raise smdp_unavailable(function, "response has no valid functionExecutionStatus")
        return data


def _transport_failure(exc: httpx.HTTPError) -> str:
    """Why the call failed below HTTP, naming a TLS cause when there is one.

    httpx reports a refused certificate as a plain ``ConnectError``; the ssl
    error it wraps says which side's certificate was the problem. Under TLS 1.3
    a server refusing our client certificate usually only closes the
    connection after the handshake, so that case stays a bare transport error.
    """
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS: SM-DP+ certificate not trusted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause.reason or type(cause).__name__})"
        cause = cause.__cause__ or cause.__context__
    return f"transport error ({type(exc).__name__})"


def _json_object(resp: HttpAnswer) -> dict[str, Any] | None:
    try:
        data = json.loads(resp.content)  # as httpx.Response.json() reads it
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _header_of(data: dict[str, Any] | None) -> wire.ResponseHeader | None:
    if data is None:
        return None
    try:
        return wire.Es2Response.model_validate(data).header
    except ValidationError:
        return None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
