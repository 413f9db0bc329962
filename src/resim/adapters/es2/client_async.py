"""The ES2+ client for the worker's event loop.

Same requests, headers, error mapping and result parsing as
:class:`resim.adapters.es2.client.HttpEs2Client` (both build on its ``Es2Core``);
built by ``HttpEs2Client.asynchronous()``.

It sends on :class:`~resim.adapters.http_keepalive.KeepAliveClient` (h11 on
asyncio streams, kept connections; a fraction of ``httpx.AsyncClient``'s CPU
per call) with the TLS context, timeout and connection limit httpx would get.
``httpx.AsyncClient`` is kept where it does something that client does not:
an injected ``transport`` (tests' ``httpx.MockTransport``), a proxy named in
the environment (which httpx honours), credentials in the URL (httpx sends
them as Basic auth). The request is the one httpx sends (same target, headers
in the same order, the JSON body encoded as httpx encodes it) except that it
does not offer compressed replies (``Accept-Encoding``); a gzip or deflate
reply sent anyway is decoded, as httpx would. Differences that remain: no
cookie jar (httpx would send back cookies an SM-DP+ sets; ES2+ does not use
them), and replies over 1 MiB are refused (a transport error, retryable).
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import httpx
from pydantic import BaseModel

from resim.adapters.es2 import wire
from resim.adapters.es2.core import Es2Core, HttpAnswer, R
from resim.adapters.http_keepalive import KeepAliveClient, proxied
from resim.domain.identifiers import normalize_iccid
from resim.services.ports import ConfirmOrderResult, DownloadOrderResult, FinalProfileStatus

MAX_REPLY_BYTES = 1 << 20  # an ES2+ reply is a few hundred bytes


class AsyncHttpEs2Client(Es2Core):
    """Implements :class:`resim.services.ports.AsyncSmdpClient`: :class:`HttpEs2Client`
    for the worker's event loop (same settings, errors and logs; the module doc).
    ``transport``: an ``httpx.AsyncBaseTransport`` (tests)."""

    def _open(self, **http_options: Any) -> None:
        self._http: httpx.AsyncClient | None = None
        self._lean: KeepAliveClient | None = None
        base_url: str = http_options["base_url"]
        url = httpx.URL(base_url)
        if self._transport is not None or proxied(base_url) or url.userinfo:
            self._http = httpx.AsyncClient(**http_options)
            return
        self._lean = KeepAliveClient(
            base_url,
            timeout=self._timeout,
            tls=self._tls if isinstance(self._tls, ssl.SSLContext) else None,
            # In httpx's order, after Host (and httpx's Accept-Encoding).
            headers=[
                (b"Connection", b"keep-alive"),
                (b"User-Agent", f"python-httpx/{httpx.__version__}".encode("ascii")),
                *((k.encode("ascii"), v.encode("ascii")) for k, v in wire.es2_headers().items()),
            ],
            max_connections=self._max_connections,
            max_reply_bytes=MAX_REPLY_BYTES,
        )
        # The target httpx builds from base_url + path (httpx's _merge_url).
        base = url.raw_path if url.raw_path.endswith(b"/") else url.raw_path + b"/"
        self._targets = {
            function: base + (wire.PATH_PREFIX + function).lstrip("/").encode("ascii")
            for function in wire.OPERATOR_FUNCTIONS
        }

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult:
        body, clean = self._download_body(call_id, iccid, profile_type, eid)
        resp = await self._call(
            wire.DOWNLOAD_ORDER, call_id, body, wire.DownloadOrderResponse, clean
        )
        return self._download_result(resp, call_id)

    async def confirm_order(
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
        resp = await self._call(
            wire.CONFIRM_ORDER, call_id, body, wire.ConfirmOrderResponse, clean, secrets
        )
        return self._confirm_result(resp, call_id)

    async def cancel_order(
        self,
        *,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None:
        body, clean = self._cancel_body(call_id, iccid, final_profile_status, matching_id, eid)
        await self._call(
            wire.CANCEL_ORDER,
            call_id,
            body,
            wire.Es2Response,
            clean,
            [matching_id],
            no_content=True,
        )

    async def release_profile(self, *, call_id: str, iccid: str) -> None:
        clean = normalize_iccid(iccid)
        body = wire.ReleaseProfileRequest(header=self._header(call_id), iccid=wire.pad_iccid(clean))
        await self._call(
            wire.RELEASE_PROFILE, call_id, body, wire.Es2Response, clean, no_content=True
        )

    async def _call(
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
        started = time.monotonic()
        sent: HttpAnswer | httpx.HTTPError
        try:
            if self._lean is not None:
                # As httpx's json= encodes it (httpx._content.encode_json).
                data = json.dumps(
                    wire.dump(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False
                ).encode("utf-8")
                sent = await self._lean.request(b"POST", self._targets[function], (), data)
            else:
                assert self._http is not None
                sent = await self._http.post(wire.PATH_PREFIX + function, json=wire.dump(body))
        except httpx.HTTPError as exc:
            sent = exc
        return self._conclude(
            function, call_id, iccid, started, sent, response_model, secrets or [], no_content
        )
