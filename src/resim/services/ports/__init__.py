"""Ports: everything resim talks to outside its own database.

Each port is a ``typing.Protocol`` named by role. Implementations live in
``resim.adapters`` and are named by technology (``HttpEs2Client``,
``BuiltinCoreNetwork``, ``SmtpMailer``); each has an in-package fake
(``FakeSmdpClient``, ...) that passes the same contract tests.

Adapters raise :class:`resim.errors.ExternalError` (``retryable`` set) and
nothing else for peer failures.

The ports live by peer in :mod:`.smdp` (ES2+), :mod:`.network` (core network,
geolocation), :mod:`.messages` (mail, SMS, CAMARA sinks, courier) and
:mod:`.jobs` (the outbox); every name is importable from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from resim.services.ports.jobs import AttemptOutcome, JobFinish, JobQueue, JobRecord
from resim.services.ports.messages import (
    AsyncMailer,
    AsyncSmsGateway,
    Courier,
    EventSink,
    HostResolver,
    Mailer,
    OutgoingEvent,
    OutgoingMail,
    OutgoingSms,
    Shipment,
    ShipmentReceipt,
    SmsGateway,
)
from resim.services.ports.network import CoreNetwork, Geolocator
from resim.services.ports.smdp import (
    AsyncSmdpClient,
    CallbackPeer,
    ConfirmOrderResult,
    DownloadOrderResult,
    DownloadProgress,
    FinalProfileStatus,
    InstallState,
    SmdpClient,
    SmdpStatusQuery,
)


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...


__all__ = [
    "AsyncMailer",
    "AsyncSmdpClient",
    "AsyncSmsGateway",
    "AttemptOutcome",
    "CallbackPeer",
    "Clock",
    "ConfirmOrderResult",
    "CoreNetwork",
    "Courier",
    "DownloadOrderResult",
    "DownloadProgress",
    "EventSink",
    "FinalProfileStatus",
    "Geolocator",
    "HostResolver",
    "InstallState",
    "JobFinish",
    "JobQueue",
    "JobRecord",
    "Mailer",
    "OutgoingEvent",
    "OutgoingMail",
    "OutgoingSms",
    "Shipment",
    "ShipmentReceipt",
    "SmdpClient",
    "SmdpStatusQuery",
    "SmsGateway",
]
