"""What the use cases need, handed in by the composition root (``resim.bootstrap``).

Nothing here reads settings or the environment; tests build a ``ServiceContext``
with fakes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from resim.adapters.courier.fake import FakeCourier
from resim.adapters.crypto import SecretBox
from resim.adapters.events.fake import FakeEventSink
from resim.adapters.events.resolver import FakeResolver
from resim.adapters.geo.ranges import NoGeolocator
from resim.adapters.sms.fake import FakeSmsGateway
from resim.domain.sink_address import SinkAddressRules
from resim.services.peer_circuit import PeerCircuits
from resim.services.ports import (
    Clock,
    CoreNetwork,
    Courier,
    EventSink,
    Geolocator,
    HostResolver,
    Mailer,
    SmdpClient,
    SmdpStatusQuery,
    SmsGateway,
)
from resim.services.unit_of_work import UnitOfWork


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, at: dt.datetime | None = None) -> None:
        self._at = at or dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta


@dataclass
class ServiceContext:
    session_factory: sessionmaker[Session]
    clock: Clock
    secrets: SecretBox
    otp_pepper: bytes
    smdp: SmdpClient
    core: CoreNetwork
    mailer: Mailer
    public_base_url: str
    smdp_address: str  # FQDN put in activation codes
    otp_generator: Callable[[], str] | None = None  # tests may fix the code
    job_max_attempts: int = 12
    job_backoff_base_seconds: float = 1.0
    job_backoff_cap_seconds: float = 300.0
    # Done jobs are deleted this long after they finished (jobs.prune_done): their
    # payloads, even sealed, are personal data kept for no purpose.
    job_retention: dt.timedelta = dt.timedelta(days=7)
    sms: SmsGateway = field(default_factory=FakeSmsGateway)  # tests that do not care
    ip_max_failures: int = 50  # SEC-03: failed attempts per source address per window
    staff_session_ttl: dt.timedelta = dt.timedelta(hours=8)
    customer_session_ttl: dt.timedelta = dt.timedelta(minutes=30)
    identity_check_ttl: dt.timedelta = dt.timedelta(minutes=30)
    courier: Courier = field(default_factory=FakeCourier)  # physical cards by post
    # argon2id cost of new PIN and password hashes (settings: RESIM_ARGON2_*)
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    # SEC-07: country of a self-service caller's address (none configured: unknown)
    geolocator: Geolocator = field(default_factory=NoGeolocator)
    # Lost install callbacks (services/reconcile.py; settings RESIM_RECONCILE_*)
    reconcile_after: dt.timedelta = dt.timedelta(minutes=15)
    reconcile_max_interval: dt.timedelta = dt.timedelta(hours=6)
    reconcile_ask_core: bool = True
    smdp_status: SmdpStatusQuery | None = None  # None: the SM-DP+ is not asked
    # This process's view of which peers keep failing (services.peer_circuit)
    peers: PeerCircuits = field(default_factory=PeerCircuits)

    # CAMARA subscriptions: where notifications go, and their rules (see settings)
    event_sink: EventSink = field(default_factory=FakeEventSink)
    camara_event_source: str = "resim"
    camara_sink_allow_http_loopback: bool = False
    camara_token_notice: dt.timedelta = dt.timedelta(seconds=60)
    # Issue 13 (SSRF): which addresses sinks may have, and how names are resolved
    # (services.sink_guard). The default resolver knows no name: tests name theirs.
    sink_rules: SinkAddressRules = field(default_factory=SinkAddressRules)
    sink_resolver: HostResolver = field(default_factory=FakeResolver)

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work; ``read_only``: for pure reads, without SQLite's write lock."""
        return UnitOfWork(self.session_factory, self.secrets, read_only=read_only)

    def now(self) -> dt.datetime:
        return self.clock.now()
