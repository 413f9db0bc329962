"""FakeSmdpClient: the SmdpClient port served in-process by the emulator's core.

It validates arguments like :class:`HttpEs2Client` (InvalidInput before any
call), hands them to :class:`resim.emulator.core.SmdpCore` directly and turns
its refusals into the same :class:`Es2StatusError` the HTTP client raises, so
the contract suite (tests/contract/test_smdp_contract.py) holds for both.

``fail_next(error)`` makes the next call raise a prepared error without
reaching the core (for tests of retry paths that need no HTTP server).
Thread-safe: the core takes its own lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from resim.adapters.es2 import wire
from resim.adapters.es2.emulator_status import install_state_of
from resim.adapters.es2.errors import Es2StatusError
from resim.domain.identifiers import normalize_eid, normalize_iccid
from resim.emulator.core import SmdpCore
from resim.emulator.model import SmdpRefusal
from resim.errors import ExternalError, InvalidInput
from resim.services.ports import (
    ConfirmOrderResult,
    DownloadOrderResult,
    FinalProfileStatus,
    InstallState,
)


class FakeSmdpClient:
    def __init__(self, core: SmdpCore | None = None, *, requester_id: str = "resim") -> None:
        self.core = core if core is not None else SmdpCore()
        self.requester_id = requester_id
        self._lock = threading.Lock()
        self._queued: list[ExternalError] = []

    def fail_next(self, *errors: ExternalError) -> None:
        """Raise these errors, one per call, before touching the core."""
        with self._lock:
            self._queued.extend(errors)

    def close(self) -> None:
        """Nothing to release; present for symmetry with HttpEs2Client."""

    def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult:
        if iccid is None and profile_type is None:
            raise InvalidInput("downloadOrder needs an ICCID or a profile type")
        clean = normalize_iccid(iccid) if iccid is not None else None
        self._maybe_fail()
        with _mapped(wire.DOWNLOAD_ORDER):
            got = self.core.download_order(
                requester=self.requester_id,
                call_id=call_id,
                iccid=clean,
                profile_type=profile_type,
                eid=normalize_eid(eid) if eid is not None else None,
            )
        return DownloadOrderResult(iccid=got)

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
        clean = normalize_iccid(iccid)
        clean_eid = normalize_eid(eid) if eid is not None else None
        self._maybe_fail()
        with _mapped(wire.CONFIRM_ORDER):
            out = self.core.confirm_order(
                requester=self.requester_id,
                call_id=call_id,
                iccid=clean,
                release_flag=release_flag,
                matching_id=matching_id,
                eid=clean_eid,
                confirmation_code=confirmation_code,
                smds_address=smds_address,
            )
        return ConfirmOrderResult(
            matching_id=out.matching_id, smdp_address=out.smdp_address, eid=out.eid
        )

    def cancel_order(
        self,
        *,
        call_id: str,
        iccid: str,
        final_profile_status: FinalProfileStatus,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None:
        clean = normalize_iccid(iccid)
        clean_eid = normalize_eid(eid) if eid is not None else None
        self._maybe_fail()
        with _mapped(wire.CANCEL_ORDER):
            self.core.cancel_order(
                requester=self.requester_id,
                call_id=call_id,
                iccid=clean,
                final_profile_status=final_profile_status,
                matching_id=matching_id,
                eid=clean_eid,
            )

    def release_profile(self, *, call_id: str, iccid: str) -> None:
        clean = normalize_iccid(iccid)
        self._maybe_fail()
        with _mapped(wire.RELEASE_PROFILE):
            self.core.release_profile(requester=self.requester_id, call_id=call_id, iccid=clean)

    def _maybe_fail(self) -> None:
        with self._lock:
            error = self._queued.pop(0) if self._queued else None
        if error is not None:
            raise error


@contextmanager
def _mapped(function: str) -> Iterator[None]:
    """Turn a core refusal into the Es2StatusError the HTTP client would raise.

    The emulator never puts a secret into its messages, so nothing is redacted.
    """
    try:
        yield
    except SmdpRefusal as exc:
        raise Es2StatusError(
            function=function,
            status=wire.FAILED,
            subject_code=exc.subject_code,
            reason_code=exc.reason_code,
            peer_message=exc.message,
            subject_identifier=exc.subject_identifier,
        ) from None


class FakeSmdpStatusQuery:
    """The SmdpStatusQuery port read straight from an emulator core (tests)."""

    def __init__(self, core: SmdpCore) -> None:
        self.core = core
        self.asked: list[str] = []

    def install_state(self, *, iccid: str) -> InstallState:
        clean = normalize_iccid(iccid)
        self.asked.append(clean)
        try:
            state = self.core.profile(clean).state
        except SmdpRefusal:
            raise ExternalError(
                "the SM-DP+ does not know that ICCID", retryable=False, code="SMDP_PROFILE_UNKNOWN"
            ) from None
        return install_state_of(state.value)


class FakeAsyncSmdpClient:
    """The AsyncSmdpClient port in memory, over ``inner`` (a :class:`FakeSmdpClient`
    and its :class:`SmdpCore`): same arguments, answers and errors."""

    def __init__(self, inner: FakeSmdpClient | None = None) -> None:
        self.inner = inner or FakeSmdpClient()

    async def download_order(
        self,
        *,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> DownloadOrderResult:
        return self.inner.download_order(
            call_id=call_id, iccid=iccid, profile_type=profile_type, eid=eid
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
        return self.inner.confirm_order(
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
        self.inner.cancel_order(
            call_id=call_id,
            iccid=iccid,
            final_profile_status=final_profile_status,
            matching_id=matching_id,
            eid=eid,
        )

    async def release_profile(self, *, call_id: str, iccid: str) -> None:
        self.inner.release_profile(call_id=call_id, iccid=iccid)

    async def aclose(self) -> None:
        return None
