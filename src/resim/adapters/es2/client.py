"""HttpEs2Client: the operator side of ES2+ over HTTPS (GSMA SGP.22 section 5.3, 6.5).

One ``httpx.Client`` (a thread-safe connection pool) serves every call, so one
instance may be shared by all worker threads; :class:`AsyncHttpEs2Client` is the
same for the worker's event loop (``asynchronous()``).
Errors are mapped in :mod:`resim.adapters.es2.core`, the same for both clients.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from resim.adapters.es2 import wire
from resim.adapters.es2.core import Es2Core, R
from resim.domain.identifiers import normalize_iccid
from resim.services.ports import ConfirmOrderResult, DownloadOrderResult, FinalProfileStatus

if TYPE_CHECKING:
    from resim.adapters.es2.client_async import AsyncHttpEs2Client


class HttpEs2Client(Es2Core):
    """Implements :class:`resim.services.ports.SmdpClient` over real HTTP.

    ``base_url`` is the SM-DP+ root (``https://smdp.example.com``); the client
    appends ``/gsma/rsp2/es2plus/<function>``. ``requester_id`` is sent as
    functionRequesterIdentifier. ``transport`` replaces the network (tests,
    ``httpx.MockTransport``); TLS settings are ignored then. Without a
    transport, ``client_cert`` (certificate and key PEM paths) and ``ca_bundle``
    require an ``https://`` URL (``ValueError`` otherwise, at construction).
    """

    def _open(self, **http_options: Any) -> None:
        self._http = httpx.Client(**http_options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpEs2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def asynchronous(self) -> AsyncHttpEs2Client | None:
        """This client for an event loop: a new :class:`AsyncHttpEs2Client` with
        the same settings and its own connections (the caller closes it); None
        when the injected transport cannot serve async calls
        (``httpx.MockTransport`` can)."""
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            return None
        from resim.adapters.es2.client_async import AsyncHttpEs2Client

        return AsyncHttpEs2Client(
            self._base_url,
            self.requester_id,
            timeout=self._timeout,
            transport=transport,
            client_cert=self._client_cert,
            ca_bundle=self._ca_bundle,
            verify=self._verify,
            max_connections=self._max_connections,
        )

    # ------------------------------------------------------------ SmdpClient

    def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult:
        body, clean = self._download_body(call_id, iccid, profile_type, eid)
        resp = self._call(wire.DOWNLOAD_ORDER, call_id, body, wire.DownloadOrderResponse, clean)
        return self._download_result(resp, call_id)

    def confirm_order(
        self,
        *,
        call_id: str,
        iccid: str,
        release_flag: bool,
        matching_id: str | None = None,
        eid: str | None = None,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
    ) -> ConfirmOrderResult:
        body, clean = self._confirm_body(
            call_id, iccid, release_flag, matching_id, eid, confirmation_code, smds_address
        )
        secrets = [matching_id, confirmation_code]
        resp = self._call(
            wire.CONFIRM_ORDER, call_id, body, wire.ConfirmOrderResponse, clean, secrets
        )
        return self._confirm_result(resp, call_id)

    def cancel_order(
        self,
        *,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None:
        body, clean = self._cancel_body(call_id, iccid, final_profile_status, matching_id, eid)
        self._call(
            wire.CANCEL_ORDER,
            call_id,
            body,
            wire.Es2Response,
            clean,
            [matching_id],
            no_content=True,
        )

    def release_profile(self, *, call_id: str, iccid: str) -> None:
        clean = normalize_iccid(iccid)
        body = wire.ReleaseProfileRequest(header=self._header(call_id), iccid=wire.pad_iccid(clean))
        self._call(wire.RELEASE_PROFILE, call_id, body, wire.Es2Response, clean, no_content=True)

    def _call(
        self,
        function: str,
        call_id: str,
        body: BaseModel,
        response_model: type[R],
        iccid: str | None,
        secrets: list[str | None] | None = None,
        *,
        no_content: bool = False,
    ) -> R:
        """POST one function and map every outcome (see the module docstring)."""
        started = time.monotonic()
        sent: httpx.Response | httpx.HTTPError
        try:
            sent = self._http.post(wire.PATH_PREFIX + function, json=wire.dump(body))
        except httpx.HTTPError as exc:
            sent = exc
        return self._conclude(
            function, call_id, iccid, started, sent, response_model, secrets or [], no_content
        )
