"""The async side of the peers the worker's event loop calls (SM-DP+, mail, SMS).

The composition root hands the services synchronous adapters (``ctx.smdp``,
``ctx.mailer``, ``ctx.sms``; the API and the CLI use them as they are). The
worker's loop asks :class:`AsyncPeers` for the async twin of whichever adapter
the context holds at that moment:

* an adapter with an ``asynchronous()`` method (``HttpEs2Client``,
  ``SmtpMailer``, ``HttpSmsGateway``, the fakes) gives its own async variant
  (``AsyncHttpEs2Client`` on the keep-alive HTTP/1.1 client of
  ``adapters.http_keepalive``, ``AsyncSmtpMailer`` on
  aiosmtplib with reused connections, ...), made once per loop and closed
  with it (:meth:`AsyncPeers.aclose`);
* any other adapter (or one whose ``asynchronous()`` returns None) is wrapped:
  each call runs the synchronous method in a thread (``asyncio.to_thread``),
  so a test or a deployment that plugs its own adapter keeps working.

Only plain calls pass through here; attempt rows and outcomes are the
caller's (:mod:`resim.services.outbox.batch_runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from resim.services.context import ServiceContext
from resim.services.ports import (
    AsyncMailer,
    AsyncSmdpClient,
    AsyncSmsGateway,
    ConfirmOrderResult,
    DownloadOrderResult,
    FinalProfileStatus,
    Mailer,
    OutgoingMail,
    OutgoingSms,
    SmdpClient,
    SmsGateway,
)


class ThreadedSmdpClient:
    """:class:`AsyncSmdpClient` over a synchronous client, one thread per call."""

    def __init__(self, sync: SmdpClient) -> None:
        self._sync = sync

    async def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult:
        return await asyncio.to_thread(
            self._sync.download_order,
            call_id=call_id,
            iccid=iccid,
            profile_type=profile_type,
            eid=eid,
        )

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
        return await asyncio.to_thread(
            self._sync.confirm_order,
            call_id=call_id,
            iccid=iccid,
            release_flag=release_flag,
            matching_id=matching_id,
            eid=eid,
            confirmation_code=confirmation_code,
            smds_address=smds_address,
        )

    async def cancel_order(
        self,
        *,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None:
        await asyncio.to_thread(
            self._sync.cancel_order,
            call_id=call_id,
            iccid=iccid,
            final_profile_status=final_profile_status,
            matching_id=matching_id,
            eid=eid,
        )

    async def aclose(self) -> None:
        return None  # the synchronous client belongs to the context


class ThreadedMailer:
    """:class:`AsyncMailer` over a synchronous :class:`Mailer`, one thread per send."""

    def __init__(self, sync: Mailer) -> None:
        self._sync = sync

    async def send(self, mail: OutgoingMail) -> None:
        await asyncio.to_thread(self._sync.send, mail)

    async def aclose(self) -> None:
        return None


class ThreadedSmsGateway:
    """:class:`AsyncSmsGateway` over a synchronous gateway, one thread per send."""

    def __init__(self, sync: SmsGateway) -> None:
        self._sync = sync

    async def send(self, message: OutgoingSms) -> None:
        await asyncio.to_thread(self._sync.send, message)

    async def aclose(self) -> None:
        return None


class AsyncPeers:
    """The async twins of ``ctx``'s adapters for one event loop (module docstring).

    Re-resolved when the context's adapter is replaced (tests do that); every
    twin made here is closed by :meth:`aclose`. Use from the loop's thread only.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._made: dict[int, tuple[object, Any]] = {}

    def smdp(self) -> AsyncSmdpClient:
        twin: AsyncSmdpClient = self._twin(self._ctx.smdp, ThreadedSmdpClient)
        return twin

    def mailer(self) -> AsyncMailer:
        twin: AsyncMailer = self._twin(self._ctx.mailer, ThreadedMailer)
        return twin

    def sms(self) -> AsyncSmsGateway:
        twin: AsyncSmsGateway = self._twin(self._ctx.sms, ThreadedSmsGateway)
        return twin

    def _twin(self, sync: object, wrap: Any) -> Any:
        hit = self._made.get(id(sync))
        if hit is not None and hit[0] is sync:
            return hit[1]
        make = getattr(sync, "asynchronous", None)
        twin = make() if callable(make) else None
        if twin is None:
            twin = wrap(sync)
        self._made[id(sync)] = (sync, twin)
        return twin

    async def aclose(self) -> None:
        made, self._made = list(self._made.values()), {}
        for _sync, twin in made:
            with contextlib.suppress(Exception):  # best effort: the loop is ending
                await twin.aclose()
