"""The SM-DP+ emulator's profile model: states, the transition table, refusals.

Profile states follow reference/es2plus.md (SGP.22 section 3.1 / 5.3)::

    Available --downloadOrder--> Allocated (no EID) | Linked (EID)
    Allocated|Linked --confirmOrder(releaseFlag=false)--> Confirmed
    Allocated|Linked --confirmOrder(releaseFlag=true)--> Released
    Confirmed --releaseProfile--> Released
    Released --download (point 3)--> Downloaded
    Downloaded --install (point 4)--> Installed | Error
    Allocated|Linked|Confirmed|Released --cancelOrder--> Available | Unavailable

:data:`TRANSITIONS` is the only source of truth; :meth:`SmdpCore._move` checks
it before any state change.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from resim.services.ports import DownloadProgress


class ProfileState(enum.StrEnum):
    AVAILABLE = "Available"
    ALLOCATED = "Allocated"
    LINKED = "Linked"
    CONFIRMED = "Confirmed"
    RELEASED = "Released"
    DOWNLOADED = "Downloaded"
    INSTALLED = "Installed"
    ERROR = "Error"
    UNAVAILABLE = "Unavailable"


S = ProfileState

# Events are the ES2+ function names plus the two device-side steps.
EVENT_DOWNLOAD = "download"
EVENT_INSTALL = "install"
EVENT_INSTALL_FAILED = "installFailed"

_ORDERED = (S.ALLOCATED, S.LINKED)
_CANCELLABLE = (S.ALLOCATED, S.LINKED, S.CONFIRMED, S.RELEASED)

TRANSITIONS: frozenset[tuple[str, ProfileState, ProfileState]] = frozenset(
    {
        ("downloadOrder", S.AVAILABLE, S.ALLOCATED),
        ("downloadOrder", S.AVAILABLE, S.LINKED),
        *(("confirmOrder", src, S.CONFIRMED) for src in _ORDERED),
        *(("confirmOrder", src, S.RELEASED) for src in _ORDERED),
        ("releaseProfile", S.CONFIRMED, S.RELEASED),
        *(("cancelOrder", src, S.AVAILABLE) for src in _CANCELLABLE),
        *(("cancelOrder", src, S.UNAVAILABLE) for src in _CANCELLABLE),
        (EVENT_DOWNLOAD, S.RELEASED, S.DOWNLOADED),
        (EVENT_INSTALL, S.DOWNLOADED, S.INSTALLED),
        (EVENT_INSTALL_FAILED, S.DOWNLOADED, S.ERROR),
    }
)


def sources_of(event: str) -> frozenset[ProfileState]:
    """The states from which ``event`` may start."""
    return frozenset(src for ev, src, _ in TRANSITIONS if ev == event)


class SmdpRefusal(Exception):
    """The emulated SM-DP+ answers Failed with this SGP.22 subject/reason pair.

    ``message`` is sent to the peer: it never contains a confirmation code or
    matching ID.
    """

    def __init__(
        self,
        subject_code: str,
        reason_code: str,
        message: str,
        *,
        subject_identifier: str | None = None,
    ) -> None:
        super().__init__(f"{subject_code}/{reason_code}: {message}")
        self.subject_code = subject_code
        self.reason_code = reason_code
        self.message = message
        self.subject_identifier = subject_identifier


class PhoneRefusal(Exception):
    """The emulated device could not use an activation code.

    ``reason`` is one of ``wrong_smdp``, ``unknown_code``, ``cancelled``,
    ``used``, ``not_released``, ``eid_mismatch``, ``invalid_eid``,
    ``confirmation_code_required``,
    ``confirmation_code_wrong``; ``message`` says plainly what happened.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Profile:
    """Mutable record inside the core; callers only ever see :class:`ProfileView`."""

    iccid: str
    profile_type: str
    state: ProfileState
    updated_at: dt.datetime
    owner: str | None = None
    eid: str | None = None
    matching_id: str | None = None
    confirmation_code_sha256: str | None = None

    def view(self) -> ProfileView:
        return ProfileView(
            iccid=self.iccid,
            profile_type=self.profile_type,
            state=self.state,
            owner=self.owner,
            eid=self.eid,
            matching_id=self.matching_id,
            confirmation_code_required=self.confirmation_code_sha256 is not None,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True)
class ProfileView:
    """A profile as tests and admin endpoints see it (never the confirmation code)."""

    iccid: str
    profile_type: str
    state: ProfileState
    owner: str | None
    eid: str | None
    matching_id: str | None
    confirmation_code_required: bool
    updated_at: dt.datetime


@dataclass(frozen=True)
class CallRecord:
    """One ES2+ call as the emulator saw it.

    ``outcome`` is ``Executed-Success``, ``Failed``, ``replayed`` (same
    functionCallIdentifier seen before; the stored answer was sent again and
    nothing executed) or ``fault:<kind>`` (an injected fault answered).
    """

    function: str
    call_id: str
    requester: str
    iccid: str | None
    outcome: str
    at: dt.datetime
    subject_code: str | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class ConfirmOutcome:
    matching_id: str
    smdp_address: str
    eid: str | None = None


def progress_note(
    smdp_id: str,
    p: Profile,
    point: int,
    status: str,
    at: dt.datetime,
    error: tuple[str, str, str] | None = None,
) -> DownloadProgress:
    """The handleDownloadProgressInfo notification for profile ``p`` at notification
    point ``point`` (3 downloaded, 4 installed; SGP.22 5.3.5); ``error`` is the
    (subject code, reason code, message) of a failed step."""
    return DownloadProgress(
        smdp_id=smdp_id,
        call_id=uuid.uuid4().hex,
        iccid=p.iccid,
        profile_type=p.profile_type,
        timestamp=at,
        notification_point_id=point,
        status=status,
        eid=p.eid,
        subject_code=error[0] if error else None,
        reason_code=error[1] if error else None,
        message=error[2] if error else None,
    )
