"""Ports to the SM-DP+ (GSMA SGP.22 ES2+): ordering, status queries, callbacks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

# ---------------------------------------------------------------- SM-DP+ (ES2+)


@dataclass(frozen=True)
class DownloadOrderResult:
    iccid: str


@dataclass(frozen=True)
class ConfirmOrderResult:
    matching_id: str
    smdp_address: str | None = None
    eid: str | None = None


FinalProfileStatus = Literal["Available", "Unavailable"]


class SmdpClient(Protocol):
    """The operator side of ES2+ (GSMA SGP.22 section 5.3).

    ``call_id`` is sent as the header's functionCallIdentifier; callers commit
    an attempt row with that id before calling. Failures raise
    :class:`resim.adapters.es2.errors.Es2StatusError` (an ExternalError that
    carries subject and reason codes) or a retryable ExternalError for
    transport problems.
    """

    def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult: ...

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
    ) -> ConfirmOrderResult: ...

    def cancel_order(
        self,
        *,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None: ...

    def release_profile(self, *, call_id: str, iccid: str) -> None: ...


class AsyncSmdpClient(Protocol):
    """:class:`SmdpClient` for an event loop (the worker's batched outbox).

    Same contract, arguments and errors as the synchronous port; ``call_id``
    is the id of an attempt row committed before the call.
    """

    async def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult: ...

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
    ) -> ConfirmOrderResult: ...

    async def cancel_order(
        self,
        *,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None: ...

    async def aclose(self) -> None: ...


InstallState = Literal["installed", "failed", "not_installed"]


class SmdpStatusQuery(Protocol):
    """What the SM-DP+ says about one profile's download: for a request whose
    handleDownloadProgressInfo (point 4) may have been lost (services/provisioning/reconcile.py).

    Standard ES2+ has no such function (SGP.22 v2 gives the operator
    downloadOrder, confirmOrder, cancelOrder and releaseProfile only; see
    shared/reference/es2plus.md). The one implementation asks resim's own
    emulator through a non-standard admin endpoint (``EmulatorStatusQuery``,
    setting ``RESIM_SMDP_STATUS_QUERY=emulator``); an SM-DP+ with a vendor
    query would get an adapter of its own.
    """

    def install_state(self, *, iccid: str) -> InstallState:
        """``installed`` (point 4 success), ``failed`` (point 4 failure) or
        ``not_installed`` (anything before). Raises ExternalError: retryable when
        the SM-DP+ cannot be reached, permanent when it does not know the ICCID."""
        ...


@dataclass(frozen=True)
class CallbackPeer:
    """Who sent an ES2+ callback, as the HTTP edge authenticated it.

    ``via``: ``client-certificate`` (mutual TLS) or ``bearer-token``.
    ``brands``: the brand ids whose ICCIDs this SM-DP+ may report on; None:
    every brand (one SM-DP+ for the whole operator).
    """

    requester_id: str
    via: str
    brands: frozenset[str] | None = None


@dataclass(frozen=True)
class DownloadProgress:
    """One handleDownloadProgressInfo notification, parsed and validated."""

    smdp_id: str  # functionRequesterIdentifier of the caller
    call_id: str  # its functionCallIdentifier
    iccid: str  # without the F pad
    profile_type: str
    timestamp: dt.datetime
    notification_point_id: int
    status: str  # Executed-Success | Executed-WithWarning | Failed | Expired
    eid: str | None = None
    subject_code: str | None = None
    reason_code: str | None = None
    message: str | None = None
