"""SmdpCore: a thread-safe, in-memory SM-DP+ speaking ES2+ semantics in Python.

The HTTP app (:mod:`resim.emulator.app`) and the in-process fake client
(:class:`resim.adapters.es2.fake.FakeSmdpClient`) both drive this class, so the
two behave identically. Every public method takes the one lock; no method
blocks on I/O while holding it.

Idempotency: see :mod:`resim.emulator.journal` (repeated functionCallIdentifiers
are answered from the journal unless ``replay_duplicate_calls=False``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

from resim.domain.identifiers import normalize_iccid
from resim.emulator import checks
from resim.emulator.ids import (
    MATCHING_ID_RE,
    UtcClock,
    generate_matching_id,
    make_iccids,
    random_iccid_prefix,
)
from resim.emulator.ids import sha256_hex as _sha256
from resim.emulator.journal import CallJournal
from resim.emulator.model import (
    EVENT_DOWNLOAD,
    EVENT_INSTALL,
    EVENT_INSTALL_FAILED,
    TRANSITIONS,
    CallRecord,
    ConfirmOutcome,
    PhoneRefusal,
    Profile,
    ProfileState,
    ProfileView,
    SmdpRefusal,
    progress_note,
    sources_of,
)
from resim.errors import InvalidInput
from resim.services.ports import Clock, DownloadProgress

T = TypeVar("T")

# An SM-DS address ending in .invalid (RFC 6761) simulates an unreachable SM-DS.
_UNREACHABLE_SUFFIX = ".invalid"


@dataclass
class _MatchingRecord:
    iccid: str
    cancelled: bool = False


class SmdpCore:
    """The emulated SM-DP+. ``allowed_requesters=None`` accepts any operator id."""

    def __init__(
        self,
        *,
        smdp_address: str = "smdp.resim.test",
        smdp_id: str = "smdp-emulator",
        allowed_requesters: Iterable[str] | None = None,
        clock: Clock | None = None,
        iccid_prefix: str | None = None,
        replay_duplicate_calls: bool = True,
    ) -> None:
        self.smdp_address = smdp_address
        self.smdp_id = smdp_id
        self._allowed = frozenset(allowed_requesters) if allowed_requesters is not None else None
        self._clock: Clock = clock or UtcClock()
        self._iccid_prefix = iccid_prefix or random_iccid_prefix()
        self._iccid_counter = 0
        self._lock = threading.RLock()
        self._profiles: dict[str, Profile] = {}
        # profile type -> Available ICCIDs in stock order (an ordered set): O(1) picks.
        self._available: dict[str, dict[str, None]] = {}
        self._matching: dict[str, _MatchingRecord] = {}
        self._journal = CallJournal(self._clock, replay=replay_duplicate_calls)

    # ------------------------------------------------------------ stock and views

    def add_stock(
        self, profile_type: str, iccids: Iterable[str], *, owner: str | None = None
    ) -> list[str]:
        """Add Available profiles; raises InvalidInput on a bad or duplicate ICCID."""
        if not profile_type.strip():
            raise InvalidInput("profile type must not be empty")
        clean = [normalize_iccid(i) for i in iccids]
        with self._lock:
            if len(set(clean)) != len(clean):
                raise InvalidInput("the same ICCID appears twice in the new stock")
            if dupes := [i for i in clean if i in self._profiles]:
                raise InvalidInput(f"ICCID already in stock: {', '.join(dupes[:3])}")
            now = self._clock.now()
            for iccid in clean:
                self._profiles[iccid] = Profile(
                    iccid, profile_type, ProfileState.AVAILABLE, now, owner=owner
                )
            self._available.setdefault(profile_type, {}).update(dict.fromkeys(clean))
        return clean

    def add_generated_stock(
        self, profile_type: str, count: int, *, owner: str | None = None
    ) -> list[str]:
        """Generate ``count`` fresh 19-digit ICCIDs (sent padded with F) and stock them."""
        with self._lock:
            iccids = make_iccids(count, prefix=self._iccid_prefix, start=self._iccid_counter)
            self._iccid_counter += count
            return self.add_stock(profile_type, iccids, owner=owner)

    def profile(self, iccid: str) -> ProfileView:
        with self._lock:
            return self._profile(normalize_iccid(iccid)).view()

    def profiles(self) -> list[ProfileView]:
        with self._lock:
            return [p.view() for p in self._profiles.values()]

    def calls(self, function: str | None = None) -> list[CallRecord]:
        """The call log, oldest first, optionally of one function."""
        with self._lock:
            return self._journal.calls(function)

    def record_fault(self, *, function: str, call_id: str, requester: str, kind: str) -> None:
        """Log a call answered by an injected fault (nothing was executed)."""
        with self._lock:
            self._journal.record(function, call_id, requester, None, f"fault:{kind}")

    def record_refusal(
        self, *, function: str, call_id: str, requester: str, refusal: SmdpRefusal
    ) -> None:
        """Log a call the HTTP layer refused before the core saw it (e.g. 1.1/1.1)."""
        with self._lock:
            self._journal.record(function, call_id, requester, None, refusal)

    def is_allowed(self, requester: str) -> bool:
        return self._allowed is None or requester in self._allowed

    # ------------------------------------------------------------ ES2+ functions

    def download_order(
        self,
        *,
        requester: str,
        call_id: str,
        iccid: str | None = None,
        profile_type: str | None = None,
        eid: str | None = None,
    ) -> str:
        """SGP.22 5.3.1: reserve a profile (by ICCID or any of a type); returns its ICCID."""
        iccid, profile_type, eid = checks.opt(iccid), checks.opt(profile_type), checks.opt(eid)

        def run() -> str:
            if iccid is None and profile_type is None:
                raise SmdpRefusal("1.6", "2.2", "iccid or profileType is mandatory")
            linked = checks.eid(eid)
            if iccid is not None:
                p = self._owned(self._profile(checks.iccid(iccid)), requester)
                if profile_type is not None and profile_type != p.profile_type:
                    raise SmdpRefusal("1.6", "2.1", "profileType does not match the ICCID")
                if p.state is not ProfileState.AVAILABLE:
                    raise SmdpRefusal(
                        "8.2.1", "3.3", "ICCID not available", subject_identifier="iccid"
                    )
            else:
                p = self._pick(cast(str, profile_type), requester)
            target = ProfileState.LINKED if linked else ProfileState.ALLOCATED
            self._move(p, "downloadOrder", target)
            p.eid = linked
            return p.iccid

        return self._execute("downloadOrder", requester, call_id, (iccid, profile_type, eid), run)

    def confirm_order(
        self,
        *,
        requester: str,
        call_id: str,
        iccid: str,
        release_flag: bool,
        matching_id: str | None = None,
        eid: str | None = None,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
    ) -> ConfirmOutcome:
        """SGP.22 5.3.2: fix the order; generate a MatchingID when none is sent."""
        matching_id, eid, code = (
            checks.opt(matching_id),
            checks.opt(eid),
            checks.opt(confirmation_code),
        )
        smds_address = checks.opt(smds_address)

        def run() -> ConfirmOutcome:
            p = self._owned(self._profile(checks.iccid(iccid)), requester)
            linked = checks.eid(eid)
            if p.state not in sources_of("confirmOrder"):
                raise checks.wrong_state(p, "confirmOrder")
            if linked and p.eid and linked != p.eid:
                raise SmdpRefusal("8.1.1", "3.10", "a different EID is linked to this profile")
            if matching_id is not None:
                if not MATCHING_ID_RE.match(matching_id):
                    raise SmdpRefusal(
                        "1.6", "2.1", "matchingId is invalid", subject_identifier="matchingId"
                    )
                if matching_id in self._matching:
                    raise SmdpRefusal("8.2.6", "3.3", "matchingId already used")
            if smds_address and smds_address.lower().endswith(_UNREACHABLE_SUFFIX):
                raise SmdpRefusal("8.9", "5.1", "SM-DS unreachable")
            mid = matching_id or self._fresh_matching_id()
            self._move(
                p, "confirmOrder", ProfileState.RELEASED if release_flag else ProfileState.CONFIRMED
            )
            p.eid = linked or p.eid
            p.matching_id = mid
            # SGP.22 stores only SHA-256(code); the device proves knowledge with a hash over it.
            p.confirmation_code_sha256 = _sha256(code) if code else None
            self._matching[mid] = _MatchingRecord(p.iccid)
            return ConfirmOutcome(matching_id=mid, smdp_address=self.smdp_address, eid=p.eid)

        params = (iccid, release_flag, matching_id, eid, _sha256(code or ""), smds_address)
        return self._execute("confirmOrder", requester, call_id, params, run)

    def cancel_order(
        self,
        *,
        requester: str,
        call_id: str,
        iccid: str,
        final_profile_status: str,
        matching_id: str | None = None,
        eid: str | None = None,
    ) -> None:
        """SGP.22 5.3.4: undo an order before download -> Available or Unavailable."""
        matching_id, eid = checks.opt(matching_id), checks.opt(eid)

        def run() -> None:
            if final_profile_status not in ("Available", "Unavailable"):
                raise SmdpRefusal("1.6", "2.1", "finalProfileStatusIndicator is invalid")
            p = self._owned(self._profile(checks.iccid(iccid)), requester)
            linked = checks.eid(eid)
            if p.state not in sources_of("cancelOrder"):
                raise checks.wrong_state(p, "cancelOrder")
            if linked and p.eid and linked != p.eid:
                raise SmdpRefusal("8.1.1", "3.10", "a different EID is linked to this profile")
            if matching_id is not None and matching_id != p.matching_id:
                raise SmdpRefusal("8.2.6", "3.8", "matchingId does not belong to this order")
            self._move(p, "cancelOrder", ProfileState(final_profile_status))
            if p.matching_id:
                self._matching[p.matching_id].cancelled = True
            p.eid = p.matching_id = p.confirmation_code_sha256 = None

        params = (iccid, final_profile_status, matching_id, eid)
        self._execute("cancelOrder", requester, call_id, params, run)

    def release_profile(self, *, requester: str, call_id: str, iccid: str) -> None:
        """SGP.22 5.3.3: allow a Confirmed profile to be downloaded."""

        def run() -> None:
            p = self._owned(self._profile(checks.iccid(iccid)), requester)
            if p.state not in sources_of("releaseProfile"):
                raise checks.wrong_state(p, "releaseProfile")
            self._move(p, "releaseProfile", ProfileState.RELEASED)

        self._execute("releaseProfile", requester, call_id, (iccid,), run)

    # ------------------------------------------------------------ the phone

    def download_and_install(
        self,
        matching_id: str,
        smdp_address: str,
        eid: str | None = None,
        fail_install: bool = False,
        confirmation_code: str | None = None,
    ) -> list[DownloadProgress]:
        """Play a device: Released -> Downloaded -> Installed (or Error).

        Returns the handleDownloadProgressInfo notifications for points 3 and 4
        (SGP.22 5.3.5), ICCID unpadded. Raises :class:`PhoneRefusal` with a plain
        reason when the activation code cannot be used.
        """
        with self._lock:
            downloaded = self.download(matching_id, smdp_address, eid, confirmation_code)
            return [downloaded, self.install(downloaded.iccid, fail=fail_install)]

    def download(
        self,
        matching_id: str,
        smdp_address: str,
        eid: str | None = None,
        confirmation_code: str | None = None,
    ) -> DownloadProgress:
        """The device fetches the profile package: Released -> Downloaded (point 3)."""
        if smdp_address.strip().lower() != self.smdp_address.lower():
            raise PhoneRefusal("wrong_smdp", "the activation code names a different SM-DP+")
        device_eid = checks.phone_eid(eid)
        with self._lock:
            record = self._matching.get(matching_id)
            if record is None:
                raise PhoneRefusal(
                    "unknown_code", "this activation code is not known to the SM-DP+"
                )
            p = self._profiles[record.iccid]
            checks.phone_may_download(
                p, matching_id, record.cancelled, device_eid, confirmation_code
            )
            p.eid = p.eid or device_eid
            self._move(p, EVENT_DOWNLOAD, ProfileState.DOWNLOADED)
            return progress_note(self.smdp_id, p, 3, "Executed-Success", self._clock.now())

    def install(self, iccid: str, *, fail: bool = False) -> DownloadProgress:
        """The eUICC installs a downloaded profile: Installed, or Error when ``fail`` (point 4)."""
        with self._lock:
            p = self._profiles.get(normalize_iccid(iccid))
            if p is None or p.state is not ProfileState.DOWNLOADED:
                raise PhoneRefusal("not_downloaded", "the profile was not downloaded")
            if fail:
                self._move(p, EVENT_INSTALL_FAILED, ProfileState.ERROR)
                # (?) reason pair for an eUICC install failure; SGP.22 leaves it to the SM-DP+.
                return progress_note(
                    self.smdp_id,
                    p,
                    4,
                    "Failed",
                    self._clock.now(),
                    ("8.1", "4.2", "installation failed"),
                )
            self._move(p, EVENT_INSTALL, ProfileState.INSTALLED)
            return progress_note(self.smdp_id, p, 4, "Executed-Success", self._clock.now())

    # ------------------------------------------------------------ internals

    def _execute(
        self,
        function: str,
        requester: str,
        call_id: str,
        params: tuple[object, ...],
        run: Callable[[], T],
    ) -> T:
        with self._lock:
            return self._journal.run(
                function=function,
                requester=requester,
                call_id=call_id,
                params=params,
                iccid_hint=checks.iccid_hint(params),
                authorized=self.is_allowed(requester),
                body=run,
                iccid_of=checks.iccid_of,
            )

    def _move(self, p: Profile, event: str, target: ProfileState) -> None:
        """The only place a profile changes state; checks :data:`TRANSITIONS`."""
        if (event, p.state, target) not in TRANSITIONS:
            raise checks.wrong_state(p, event)
        if p.state is ProfileState.AVAILABLE:
            del self._available[p.profile_type][p.iccid]
        if target is ProfileState.AVAILABLE:
            self._available[p.profile_type][p.iccid] = None
        p.state = target
        p.updated_at = self._clock.now()

    def _profile(self, iccid: str) -> Profile:
        p = self._profiles.get(iccid)
        if p is None:
            raise SmdpRefusal("8.2.1", "3.9", "ICCID unknown", subject_identifier="iccid")
        return p

    def _owned(self, p: Profile, requester: str) -> Profile:
        if p.owner is not None and p.owner != requester:
            raise SmdpRefusal("1.1", "1.2", "this profile belongs to another operator")
        return p

    def _pick(self, profile_type: str, requester: str) -> Profile:
        available = self._available.get(profile_type)
        if available is None:
            raise SmdpRefusal(
                "8.2.5", "3.9", "profileType unknown", subject_identifier="profileType"
            )
        for iccid in available:
            p = self._profiles[iccid]
            if p.owner in (None, requester):
                return p
        raise SmdpRefusal("8.2.5", "3.7", "no profile of this profileType is available")

    def _fresh_matching_id(self) -> str:
        while (mid := generate_matching_id()) in self._matching:
            pass
        return mid
