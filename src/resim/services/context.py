"""What the use cases need, handed in by the composition root (``resim.bootstrap``).

Nothing here reads settings or the environment; tests build one through
``resim.bootstrap.build_context`` with fakes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from argon2 import PasswordHasher

from resim.adapters.crypto import SecretBox
from resim.adapters.geo.ranges import NoGeolocator
from resim.domain.sink_address import SinkAddressRules
from resim.services.access.credentials import ClientUseMarks
from resim.services.outbox.peer_circuit import PeerCircuits
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
from resim.services.transient import RunOnce, TransientRetry
from resim.services.unit_of_work import UnitOfWork, UnitOfWorkFactory

if TYPE_CHECKING:
    from resim.services.onboarding.ports import ImportStore


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
    """The ports and limits of every use case. Peers have no default: the
    composition root names each one (a fake only where a test asks for it)."""

    # A new unit of work per call (``resim.adapters.db.unit_of_work.sql_uow_factory``
    # in every process; ``resim.adapters.memory`` in use-case tests).
    uow_factory: UnitOfWorkFactory
    clock: Clock
    secrets: SecretBox
    otp_pepper: bytes
    smdp: SmdpClient
    core: CoreNetwork
    mailer: Mailer
    sms: SmsGateway
    courier: Courier  # physical cards by post
    # CAMARA subscriptions: where notifications go (see settings)
    event_sink: EventSink
    # Issue 13 (SSRF): how sink host names are resolved (services.sink_guard)
    sink_resolver: HostResolver
    public_base_url: str
    smdp_address: str  # FQDN put in activation codes
    otp_generator: Callable[[], str] | None = None  # tests may fix the code
    job_max_attempts: int = 12
    job_backoff_base_seconds: float = 1.0
    job_backoff_cap_seconds: float = 300.0
    # Done jobs are deleted this long after they finished (jobs.prune_done): their
    # payloads, even sealed, are personal data kept for no purpose.
    job_retention: dt.timedelta = dt.timedelta(days=7)
    ip_max_failures: int = 50  # SEC-03: failed attempts per source address per window
    staff_session_ttl: dt.timedelta = dt.timedelta(hours=8)
    customer_session_ttl: dt.timedelta = dt.timedelta(minutes=30)
    identity_check_ttl: dt.timedelta = dt.timedelta(minutes=30)
    # argon2id cost of new PIN and password hashes (settings: RESIM_ARGON2_*)
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    # SEC-07: country of a self-service caller's address (none configured: unknown)
    geolocator: Geolocator = field(default_factory=NoGeolocator)
    # Lost install callbacks (services/provisioning/reconcile.py; settings RESIM_RECONCILE_*)
    reconcile_after: dt.timedelta = dt.timedelta(minutes=15)
    reconcile_max_interval: dt.timedelta = dt.timedelta(hours=6)
    reconcile_ask_core: bool = True
    smdp_status: SmdpStatusQuery | None = None  # None: the SM-DP+ is not asked
    # This process's view of which peers keep failing (services.peer_circuit)
    peers: PeerCircuits = field(default_factory=PeerCircuits)
    # This process's writes of API clients' last_used_at (services.access.sessions)
    client_use: ClientUseMarks = field(default_factory=ClientUseMarks)

    # CAMARA subscriptions: their rules (see settings)
    camara_event_source: str = "resim"
    camara_sink_allow_http_loopback: bool = False
    camara_token_notice: dt.timedelta = dt.timedelta(seconds=60)
    # Runs a use case again on the store's passing errors (services.transient);
    # the composition root names the SQL one.
    retry: TransientRetry = field(default_factory=RunOnce)
    # Issue 13 (SSRF): which addresses sinks may have (services.sink_guard)
    sink_rules: SinkAddressRules = field(default_factory=SinkAddressRules)
    # The onboarding import's SQL (services.onboarding.ports); bootstrap sets it.
    import_store: ImportStore | None = None

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work (use it as ``with ctx.uow() as uow: ...``);
        ``read_only``: for pure reads, without SQLite's write lock."""
        return self.uow_factory(read_only=read_only)

    def now(self) -> dt.datetime:
        return self.clock.now()
