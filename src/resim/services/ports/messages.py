"""Ports that carry messages out: mail, SMS, CAMARA notification sinks, courier."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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
