"""The composition root: the one place that reads settings and builds adapters.

Tests call :func:`build_context` with fakes for any port; everything not
given is built from settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.adapters.corenet.pyhss import PyHssCoreNetwork, PyHssSettings
from resim.adapters.courier.capture import CaptureCourier
from resim.adapters.crypto import SecretBox, password_hasher
from resim.adapters.db.credential_reader import SqlCredentialReader
from resim.adapters.db.engine import create_engine, create_read_engine
from resim.adapters.db.import_store import SqlImportStore
from resim.adapters.db.orm import start_mappers
from resim.adapters.db.rate_buckets import DatabaseRateLimiter, create_bucket_engine
from resim.adapters.db.simswap_reader import SqlSimSwapReader
from resim.adapters.db.transient import SqlTransientRetry
from resim.adapters.db.unit_of_work import sql_uow_factory
from resim.adapters.es2.client import HttpEs2Client
from resim.adapters.es2.emulator_status import EmulatorStatusQuery
from resim.adapters.es2.peers import CertificatePeers
from resim.adapters.events.http import HttpEventSink
from resim.adapters.events.resolver import SystemResolver
from resim.adapters.geo.ranges import CidrCountryFile, NoGeolocator
from resim.adapters.jwks import HttpJwksSource, KeySource, StaticJwksSource
from resim.adapters.mail.smtp import SmtpMailer
from resim.adapters.sms.http import HttpSmsGateway
from resim.adapters.token_issuer import LocalTokenIssuer
from resim.entrypoints.api.app import ApiConfig
from resim.entrypoints.camara.auth import CamaraAccess
from resim.entrypoints.camara.mount import CamaraRuntime
from resim.entrypoints.camara.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from resim.entrypoints.camara.tokens import TokenRules, TokenVerifier
from resim.entrypoints.camara.versions import VERSIONS
from resim.errors import ConfigurationError
from resim.pools import Pool, api_pool, read_pool
from resim.services.access.credentials import CredentialReader
from resim.services.camara.simswap import SimSwapQueries
from resim.services.context import ServiceContext, SystemClock
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
from resim.settings import Settings


@dataclass
class Secrets:
    keys: list[str]
    otp_pepper: bytes
    callback_token: str


def load_secrets(settings: Settings) -> Secrets:
    """Keys from settings; in dev, created once in ``data_dir/secret.key`` if absent."""
    keys = settings.secret_key_list()
    if not keys:
        if settings.environment == "production":
            raise RuntimeError("RESIM_SECRET_KEYS must be set in production")
        keys = [_dev_key(settings.data_dir / "secret.key")]
    master = keys[0].encode()
    pepper = hmac.new(master, b"resim otp pepper", hashlib.sha256).digest()
    token = settings.smdp_callback_token.get_secret_value()
    if not token:
        if settings.environment == "production" and not settings.callback_mtls:
            raise RuntimeError(
                "RESIM_SMDP_CALLBACK_TOKEN must be set in production (or ES2+ callbacks"
                " authenticated by client certificate: RESIM_API_TLS_CLIENT_CA_FILE)"
            )
        if not settings.callback_mtls:
            token = hmac.new(master, b"resim es2 callback", hashlib.sha256).hexdigest()
    return Secrets(keys=keys, otp_pepper=pepper, callback_token=token)


def _dev_key(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SecretBox.generate_key()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # first writer wins if two processes start at once
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def build_engine(
    settings: Settings, *, pool_size: int | None = None, pool: Pool | None = None
) -> sa.Engine:
    """The read-write engine. ``pool`` sizes it (default: the API process's pool);
    ``pool_size`` alone (tests, tools) means that many plus as many overflow."""
    start_mappers()
    if settings.effective_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = settings.db_lock_timeout_seconds
    if pool_size is not None:
        return create_engine(
            settings.effective_database_url, pool_size=pool_size, lock_timeout=lock
        )
    chosen = pool or api_pool(settings)
    return create_engine(
        settings.effective_database_url,
        pool_size=chosen.size,
        max_overflow=chosen.overflow,
        lock_timeout=lock,
    )


def build_smdp_client(settings: Settings) -> HttpEs2Client:
    cert = None
    if settings.smdp_client_cert and settings.smdp_client_key:
        cert = (str(settings.smdp_client_cert), str(settings.smdp_client_key))
    return HttpEs2Client(
        settings.smdp_url,
        settings.smdp_requester_id,
        timeout=settings.smdp_timeout_seconds,
        client_cert=cert,
        ca_bundle=str(settings.smdp_ca_bundle) if settings.smdp_ca_bundle else None,
        max_connections=max(20, settings.worker_concurrency * 2),
    )


def build_mailer(settings: Settings) -> SmtpMailer:
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        sender=settings.smtp_sender,
        use_starttls=settings.smtp_starttls,
        use_ssl=settings.smtp_ssl,
        username=settings.smtp_username,
        password=settings.smtp_password,
    )


def build_sms_gateway(settings: Settings) -> HttpSmsGateway:
    return HttpSmsGateway(
        settings.sms_gateway_url, token=settings.sms_gateway_token, sender=settings.sms_sender
    )


def core_network_problem(settings: Settings) -> str | None:
    """What stops ``RESIM_CORE_NETWORK`` from working with the other settings, or None.

    The value itself is checked by Settings (one of the names it lists); this
    checks the addresses the chosen adapter needs. ``resim demo`` fills in
    osmo-hlr's address itself when it starts one, so it checks after that.
    """
    if settings.core_network == "osmo-hlr" and not settings.osmo_hlr_ctrl_host:
        return (
            "RESIM_CORE_NETWORK=osmo-hlr needs RESIM_OSMO_HLR_CTRL_HOST (the HLR's CTRL "
            "address; RESIM_OSMO_HLR_VTY_HOST defaults to it)"
        )
    if settings.core_network == "pyhss" and not settings.pyhss_url:
        return "RESIM_CORE_NETWORK=pyhss needs RESIM_PYHSS_URL (PyHSS's API, e.g. http://hss:8080)"
    return None


def build_core_network(settings: Settings, engine: sa.Engine) -> CoreNetwork:
    """The adapter ``RESIM_CORE_NETWORK`` names (docs/operations.md, "Choosing the
    core network"). Connects lazily: an HLR that is down at start-up makes the
    first core-network job fail retryably, not the process."""
    problem = core_network_problem(settings)
    if problem is not None:
        raise ConfigurationError(problem, code="CORE_NETWORK_SETTINGS")
    if settings.core_network == "osmo-hlr":
        return OsmoHlrCoreNetwork(
            settings.osmo_hlr_ctrl_host,
            settings.osmo_hlr_ctrl_port,
            vty_host=settings.osmo_hlr_vty_host or None,
            vty_port=settings.osmo_hlr_vty_port,
            timeout=settings.osmo_hlr_timeout_seconds,
        )
    if settings.core_network == "pyhss":
        key = settings.pyhss_provisioning_key.get_secret_value()
        return PyHssCoreNetwork(
            PyHssSettings(
                url=settings.pyhss_url,
                provisioning_key=key or None,
                default_apn=settings.pyhss_default_apn,
                apn_list=settings.pyhss_apn_list,
                timeout=settings.pyhss_timeout_seconds,
            )
        )
    return BuiltinCoreNetwork(engine)


def build_context(
    settings: Settings,
    *,
    engine: sa.Engine | None = None,
    smdp: SmdpClient | None = None,
    core: CoreNetwork | None = None,
    mailer: Mailer | None = None,
    clock: Clock | None = None,
    sms: SmsGateway | None = None,
    event_sink: EventSink | None = None,
    courier: Courier | None = None,
    sink_resolver: HostResolver | None = None,
    geolocator: Geolocator | None = None,
    smdp_status: SmdpStatusQuery | None = None,
) -> ServiceContext:
    engine = engine or build_engine(settings)
    secrets = load_secrets(settings)
    sink_rules = settings.camara_sink_rules
    resolver = sink_resolver or SystemResolver()
    sessions = sessionmaker(engine, expire_on_commit=False)
    box = SecretBox(secrets.keys)
    return ServiceContext(
        uow_factory=sql_uow_factory(sessions, box),
        retry=SqlTransientRetry(),
        clock=clock or SystemClock(),
        secrets=box,
        import_store=SqlImportStore(sessions, box),
        otp_pepper=secrets.otp_pepper,
        smdp=smdp or build_smdp_client(settings),
        core=core or build_core_network(settings, engine),
        mailer=mailer or build_mailer(settings),
        public_base_url=settings.public_base_url.rstrip("/"),
        smdp_address=settings.smdp_address,
        job_max_attempts=settings.job_max_attempts,
        job_backoff_base_seconds=settings.job_backoff_base_seconds,
        job_backoff_cap_seconds=settings.job_backoff_cap_seconds,
        job_retention=dt.timedelta(days=settings.job_retention_days),
        sms=sms or build_sms_gateway(settings),
        ip_max_failures=settings.ip_max_failures,
        staff_session_ttl=dt.timedelta(hours=settings.staff_session_hours),
        customer_session_ttl=dt.timedelta(minutes=settings.customer_session_minutes),
        identity_check_ttl=dt.timedelta(minutes=settings.identity_check_minutes),
        event_sink=event_sink
        or HttpEventSink(
            timeout=settings.camara_sink_timeout_seconds,
            max_connections=max(20, settings.worker_concurrency * 2),
            rules=sink_rules,
            resolver=resolver,
        ),
        camara_event_source=settings.effective_camara_event_source,
        camara_sink_allow_http_loopback=settings.camara_sink_allow_http_loopback,
        sink_rules=sink_rules,
        sink_resolver=resolver,
        camara_token_notice=dt.timedelta(seconds=settings.camara_token_notice_seconds),
        # No real carrier adapter exists: shipments are captured under the data directory.
        courier=courier or CaptureCourier(settings.data_dir / "courier"),
        password_hasher=password_hasher(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        geolocator=geolocator or build_geolocator(settings),
        reconcile_after=dt.timedelta(seconds=settings.reconcile_after_seconds),
        reconcile_max_interval=dt.timedelta(seconds=settings.reconcile_max_interval_seconds),
        reconcile_ask_core=settings.reconcile_ask_core,
        smdp_status=smdp_status or build_smdp_status(settings),
    )


def build_smdp_status(settings: Settings) -> SmdpStatusQuery | None:
    """The SM-DP+ status query the reconcile job may use (ES2+ has none: emulator only)."""
    if settings.smdp_status_query == "emulator":
        return EmulatorStatusQuery(settings.smdp_url, timeout=settings.smdp_timeout_seconds)
    return None


def build_geolocator(settings: Settings) -> Geolocator:
    """The operator's ranges file when configured (a bad file stops start-up), else none."""
    if settings.geo_ranges_file is None:
        return NoGeolocator()
    return CidrCountryFile.from_file(settings.geo_ranges_file)


def build_token_issuer(settings: Settings) -> LocalTokenIssuer:
    """resim's own CAMARA token issuer (key under data_dir, created on first use)."""
    return LocalTokenIssuer.from_file(
        settings.camara_issuer_key_file,
        issuer=settings.camara_effective_issuer,
        audience=settings.camara_effective_audience,
    )


def build_rate_limiter(settings: Settings) -> Limiter:
    """The CAMARA per-client limiter: buckets in the database shared by every API
    process (``camara_rate_limit_shared``, the default), else in this process."""
    local = RateLimiter(rate=settings.camara_rate_per_second, burst=settings.camara_burst)
    if not settings.camara_rate_limit_shared or settings.camara_rate_per_second <= 0:
        return local
    # A small pool of its own: a take is one short statement; a lock held longer
    # than 2 s means the database is overloaded and the in-process bucket decides.
    engine = create_bucket_engine(settings.effective_database_url)
    store = DatabaseRateLimiter(
        engine, rate=settings.camara_rate_per_second, burst=settings.camara_burst
    )
    return SharedRateLimiter(store, local)


def build_read_engine(settings: Settings) -> sa.Engine:
    """The API's read-only engine (``read_pool``): CAMARA reads and bearer credentials."""
    if settings.effective_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    chosen = read_pool(settings)
    return create_read_engine(
        settings.effective_database_url, pool_size=chosen.size, max_overflow=chosen.overflow
    )


def build_camara(
    settings: Settings, *, clock: Clock | None = None, read_engine: sa.Engine | None = None
) -> CamaraRuntime:
    """Token verification (operator's JWKS, or resim's own issuer), rate limits, and
    the SIM Swap read path on its own read-only engine."""
    clock = clock or SystemClock()
    if read_engine is None:
        read_engine = build_read_engine(settings)
    issuer: LocalTokenIssuer | None = None
    keys: KeySource
    if settings.camara_jwks_url:
        keys = HttpJwksSource(
            settings.camara_jwks_url, min_refresh_seconds=settings.camara_jwks_min_refresh_seconds
        )
    else:
        issuer = build_token_issuer(settings)
        keys = StaticJwksSource(issuer.jwks())
    verifier = TokenVerifier(
        TokenRules(
            issuer=settings.camara_effective_issuer,
            audience=settings.camara_effective_audience,
            leeway_seconds=settings.camara_token_leeway_seconds,
        ),
        keys,
        clock=clock,
    )
    limiter = build_rate_limiter(settings)
    access = CamaraAccess(
        verifier, limiter, required_purpose=settings.camara_required_purpose or None
    )
    queries = SimSwapQueries(
        SqlSimSwapReader(read_engine),
        clock,
        policy_cache_seconds=settings.camara_policy_cache_seconds,
    )
    version = VERSIONS[settings.camara_version]  # the one place the setting is read
    return CamaraRuntime(access, issuer=issuer, simswap=queries, version=version)


def build_api_config(
    settings: Settings, *, clock: Clock | None = None, camara: CamaraRuntime | None = None
) -> ApiConfig:
    """What the API app takes from settings: the ES2+ callback's credentials,
    CAMARA, and the HTTP edge (body limit, trusted proxies, metrics token)."""
    credentials: CredentialReader | None = None
    if camara is None:
        # One read engine (and pool) for the CAMARA reads and the API's credentials.
        read_engine = build_read_engine(settings)
        camara = build_camara(settings, clock=clock, read_engine=read_engine)
        credentials = SqlCredentialReader(read_engine)
    return ApiConfig(
        smdp_id=settings.smdp_id,
        # Mutual TLS: the SM-DP+ is known by its certificate and the token is not accepted.
        callback_token="" if settings.callback_mtls else load_secrets(settings).callback_token,
        callback_certificates=(
            CertificatePeers(settings.smdp_callback_clients) if settings.callback_mtls else None
        ),
        camara=camara,
        credentials=credentials,
        bench_endpoints=settings.bench_endpoints,
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=tuple(settings.trusted_proxies),
        metrics_token=settings.metrics_token.get_secret_value(),
    )
