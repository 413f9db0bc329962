"""Ports: everything resim talks to outside its own database.

Each port is a ``typing.Protocol`` named by role. Implementations live in
``resim.adapters`` and are named by technology (``HttpEs2Client``,
``BuiltinCoreNetwork``, ``SmtpMailer``); each has an in-package fake
(``FakeSmdpClient``, ...) that passes the same contract tests.

Adapters raise :class:`resim.errors.ExternalError` (``retryable`` set) and
nothing else for peer failures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# ---------------------------------------------------------------- clock


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...


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


# ---------------------------------------------------------------- core network


class CoreNetwork(Protocol):
    """The HLR/HSS/UDM as resim needs it. Every operation is idempotent.

    See shared/reference/core-network.md. ``move_msisdn`` moves the number from
    ``old_imsi`` (may be None for a first binding) to ``new_imsi`` and leaves no
    window visible to callers in which two IMSIs or none own the number: on a
    partial failure it restores the old binding before raising.
    """

    def provision_imsi(self, *, imsi: str) -> None:
        """Make sure a subscriber record exists for ``imsi`` (no MSISDN yet)."""
        ...

    def move_msisdn(self, *, msisdn: str, new_imsi: str, old_imsi: str | None) -> None: ...

    def suspend_imsi(self, *, imsi: str) -> None:
        """Bar the IMSI (no service) but keep its record; reversible by ``resume_imsi``.

        A device registered with the IMSI is dropped from the network now, not at
        its next location update (``rules.detaches``; osmo-hlr: Delete-Subscriber-
        Data to the serving VLR/SGSN), and may not register again while barred.
        """
        ...

    def resume_imsi(self, *, imsi: str) -> None: ...

    def retire_imsi(self, *, imsi: str) -> None:
        """Disable the IMSI for good and force it off the network (as ``suspend_imsi``)."""
        ...

    def apply_post_swap_holds(
        self,
        *,
        imsi: str,
        sms_hold_until: dt.datetime | None,
        port_out_block_until: dt.datetime | None,
    ) -> None:
        """SEC-06: set the IMSI's SMS hold and port-out block to exactly these times.

        Idempotent (the same values again change nothing); None clears a hold.
        A core network without the feature raises a permanent ExternalError
        (``CORE_HOLDS_UNSUPPORTED``) rather than ignoring it.
        """
        ...

    def msisdn_of(self, *, imsi: str) -> str | None: ...

    def imsi_of(self, *, msisdn: str) -> str | None: ...

    def is_enabled(self, *, imsi: str) -> bool: ...

    def attached(self, *, imsi: str) -> bool:
        """Whether a device with ``imsi`` has registered with the network (a location
        update reached the HLR) since the record was made.

        A new SIM's IMSI registering proves the profile is installed on a device:
        the reconcile job (services/provisioning/reconcile.py) asks this when the SM-DP+'s
        install callback may have been lost. False for an IMSI without a record.
        A core network that cannot tell raises a permanent ExternalError
        (``CORE_ATTACH_UNSUPPORTED``) rather than answering False.
        """
        ...

    def cancel_location(self, *, imsi: str) -> bool:
        """A network refresh: make the network elements serving ``imsi`` drop it,
        so the phone registers afresh (for a new SIM that will not attach, stuck
        on a stale registration). Access is not changed.

        True when a serving element was told, False when none serves the IMSI
        (nothing to refresh: the phone has not reached the network). Unknown:
        ``CORE_UNKNOWN_IMSI``; retired: ``CORE_IMSI_RETIRED``. A core network that
        cannot send a Cancel-Location raises a permanent ExternalError
        (``CORE_REFRESH_UNSUPPORTED``) rather than pretending.
        """
        ...


# ---------------------------------------------------------------- geolocation


class Geolocator(Protocol):
    """Where a source address is, as far as the operator's data says (SEC-07 new_country)."""

    def country_of(self, address: str) -> str | None:
        """The ISO 3166-1 alpha-2 code (upper case) of ``address``, or None when unknown.

        Never raises for a malformed or private address (None); an address is
        personal data and is never logged.
        """
        ...


# ---------------------------------------------------------------- mail


@dataclass(frozen=True)
class OutgoingMail:
    """A rendered message. ``message_id`` is stable across retries (idempotency key)."""

    to: str
    subject: str
    text: str
    message_id: str
    html: str | None = None
    language: str = "en"
    headers: dict[str, str] = field(default_factory=dict)
    # The display name of the From address: the brand the customer deals with
    # (issue 12); None keeps the sender's own (RESIM_SMTP_SENDER).
    sender_name: str | None = None


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> None:
        """Hand the message to the mail system; raise ExternalError on failure."""
        ...


class AsyncMailer(Protocol):
    """:class:`Mailer` for an event loop; may keep connections open between sends."""

    async def send(self, mail: OutgoingMail) -> None: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- SMS


@dataclass(frozen=True)
class OutgoingSms:
    """One text message. ``id`` is stable across retries (idempotency key): a
    gateway that already accepted a message with this id accepts it again
    without sending a second one."""

    id: str
    to: str  # E.164
    text: str


class SmsGateway(Protocol):
    def send(self, message: OutgoingSms) -> None:
        """Hand the message to the SMS gateway; raise ExternalError (retryable set)
        on failure. The text is never logged or put in an error message."""
        ...


class AsyncSmsGateway(Protocol):
    """:class:`SmsGateway` for an event loop (same contract and errors)."""

    async def send(self, message: OutgoingSms) -> None: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- CAMARA notification sinks


@dataclass(frozen=True)
class OutgoingEvent:
    """One CloudEvent for a relying party's sink (CAMARA subscriptions).

    ``id`` is the CloudEvents id: the same on every retry, so the sink can drop
    a repeat. ``access_token`` is the subscription's sinkCredential (sent as
    ``Authorization: Bearer``); it is a secret and kept out of ``repr``.
    """

    id: str
    sink: str
    body: dict[str, object]
    access_token: str | None = field(default=None, repr=False)


class EventSink(Protocol):
    def deliver(self, event: OutgoingEvent) -> int:
        """POST ``event`` to its sink in CloudEvents structured mode; return the 2xx status.

        Failures raise :class:`resim.errors.ExternalError` with ``status`` set
        when the sink answered: retryable for transport errors, timeouts, 408,
        429 and 5xx; permanent for any other answer (3xx included: a redirect is
        not followed, the bearer token must not travel to another address).
        """


class HostResolver(Protocol):
    def resolve(self, host: str, port: int) -> list[str]:
        """Every IP address ``host`` has for a TCP connection to ``port`` (A and AAAA), as
        text, in the order to try. A name that does not resolve raises
        :class:`resim.errors.ExternalError` (``SINK_UNRESOLVED``, retryable: DNS may
        answer later)."""


# ---------------------------------------------------------------- courier


@dataclass(frozen=True)
class Shipment:
    """A physical SIM card to send. ``id`` (the request id) is the idempotency key:
    dispatching the same id again returns the first receipt and sends nothing new.
    ``recipient`` and ``address`` are personal data: never logged."""

    id: str
    iccid: str
    recipient: str
    address: str
    brand_id: str


@dataclass(frozen=True)
class ShipmentReceipt:
    tracking_ref: str  # the carrier's reference, shown to staff


class Courier(Protocol):
    """A parcel carrier's booking interface. resim ships no real carrier adapter:
    ``FakeCourier`` (tests) and ``CaptureCourier`` (demo) record shipments only."""

    def dispatch(self, shipment: Shipment) -> ShipmentReceipt:
        """Book the shipment; raise ExternalError (retryable set) on failure."""
        ...


# ---------------------------------------------------------------- outbox (jobs)


@dataclass(frozen=True)
class JobRecord:
    """A claimed job: what its handler gets. ``attempts`` counts this run."""

    id: str
    kind: str
    request_id: str | None
    payload: dict[str, object]
    attempts: int


@dataclass(frozen=True)
class JobFinish:
    """How one run of a claimed job ended: ``state`` done, dead or pending (retry,
    due at ``run_after``). Recorded only if ``worker_id`` still holds the job at
    ``attempts``."""

    job_id: str
    worker_id: str
    attempts: int
    state: str
    error: str | None = None
    run_after: dt.datetime | None = None
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class AttemptOutcome:
    """The outcome of one peer call whose attempt row was committed before it."""

    call_id: str
    state: str  # succeeded | failed
    finished_at: dt.datetime
    error_code: str | None = None
    retryable: bool | None = None


class JobQueue(Protocol):
    """The outbox table and the attempt rows, inside the caller's transaction
    (never commits). Implemented in SQL by ``adapters.db.outbox.SqlOutbox``."""

    def claim(
        self,
        *,
        worker_id: str,
        limit: int,
        now: dt.datetime,
        lease_seconds: float,
        running: Collection[str] = (),
    ) -> list[JobRecord]: ...

    def extend_leases(
        self, *, worker_id: str, job_ids: Sequence[str], lease_until: dt.datetime
    ) -> int: ...

    def finish(self, finishes: Sequence[JobFinish]) -> None: ...

    def start_attempts(self, rows: Sequence[dict[str, Any]]) -> None: ...

    def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> None: ...

    def may_have_taken_effect(self, *, job_id: str, target: str) -> bool: ...

    def prune_done(self, *, finished_before: dt.datetime, batch: int) -> int: ...
