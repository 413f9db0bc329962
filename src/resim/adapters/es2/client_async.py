"""The ES2+ client on ``httpx.AsyncClient``, for the worker's event loop.

Same requests, headers, error mapping and result parsing as
:class:`resim.adapters.es2.client.HttpEs2Client` (both build on its ``Es2Core``);
built by ``HttpEs2Client.asynchronous()``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import BaseModel

from resim.adapters.es2 import wire
from resim.adapters.es2.core import Es2Core, R
from resim.domain.identifiers import normalize_iccid
from resim.services.ports import ConfirmOrderResult, DownloadOrderResult, FinalProfileStatus


class AsyncHttpEs2Client(Es2Core):
    """Implements :class:`resim.services.ports.AsyncSmdpClient`: :class:`HttpEs2Client`
    on ``httpx.AsyncClient`` (same settings, errors and logs), for the worker's
    event loop. ``transport``: an ``httpx.AsyncBaseTransport`` (tests)."""

    def _open(self, **http_options: Any) -> None:
        self._http = httpx.AsyncClient(**http_options)

    async def aclose(self) -> None:
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
        sent: httpx.Response | httpx.HTTPError
        try:
            sent = await self._http.post(wire.PATH_PREFIX + function, json=wire.dump(body))
        except httpx.HTTPError as exc:
            sent = exc
        return self._conclude(
            function, call_id, iccid, started, sent, response_model, secrets or [], no_content
        )
