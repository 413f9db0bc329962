"""One typed settings object, read from ``RESIM_*`` environment variables.

Only the composition root (``resim.bootstrap``) and the CLI read it; everything
else is handed what it needs. Secrets are ``SecretStr``. The defaults are the
embedded set-up: a SQLite file under ``var/``, the built-in SM-DP+ emulator,
the built-in core network and mail captured on loopback.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from resim.domain.sink_address import SinkAddressRules, parse_allow_list
from resim.settings_es2 import Es2CallbackClient as Es2CallbackClient


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESIM_", extra="ignore")

    environment: Literal["dev", "production"] = "dev"
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite file in data_dir
    # How long a statement waits for a lock (SQLite busy timeout, PostgreSQL
    # lock_timeout) before the unit of work is retried or answered 503.
    db_lock_timeout_seconds: float = Field(30.0, gt=0, le=600)

    # Fernet keys, comma separated; the first encrypts, all decrypt (rotation).
    # In dev, when empty, a key is created once in data_dir/secret.key.
    secret_keys: SecretStr = SecretStr("")
    # Sessions (issue 3): a staff sign-in (password + TOTP), a customer's session
    # after verifying a request, and how long an agent's ID-document check opens
    # the unredacted console view. Machine clients use API keys (resim clients add).
    staff_session_hours: float = Field(8.0, gt=0, le=24)
    customer_session_minutes: float = Field(30.0, gt=0, le=24 * 60)
    identity_check_minutes: float = Field(30.0, gt=0, le=24 * 60)

    public_base_url: str = "http://127.0.0.1:8600"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8600, ge=1, le=65535)

    # The HTTP edge (docs/security.md, "The HTTP edge"). The largest request body
    # a route takes unless it has a limit of its own (forms 16 KiB, the ES2+
    # callback 32 KiB); a bigger one is answered 413 before or while it is read.
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Reverse proxies (addresses or CIDR networks, comma separated) whose
    # X-Forwarded-For and X-Forwarded-Proto are believed. Empty: none; the
    # socket's peer is the client, whatever the headers say.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The bearer token a Prometheus scraper sends to GET /metrics. Empty:
    # /metrics answers only callers on loopback (127.0.0.0/8, ::1).
    metrics_token: SecretStr = SecretStr("")

    # Database connection pools (docs/operations.md, "Database connections").
    # A process opens at most the sum of its pools' size + overflow; start-up
    # refuses a sum above what PostgreSQL's max_connections leaves for it.
    # The API process: requests and pages, plus the CAMARA read engine.
    db_pool_size: int = Field(10, ge=1, le=1000)
    db_max_overflow: int = Field(10, ge=0, le=1000)
    read_db_pool_size: int = Field(5, ge=1, le=1000)
    read_db_max_overflow: int = Field(5, ge=0, le=1000)
    # The worker process; unset: the worker's concurrency + 4 (claiming loop,
    # lease renewal and the core network's own connections).
    worker_db_pool_size: int | None = Field(None, ge=1, le=1000)
    worker_db_max_overflow: int = Field(0, ge=0, le=1000)

    # SM-DP+ (ES2+)
    smdp_url: str = "http://127.0.0.1:8700"
    smdp_requester_id: str = "resim-operator"
    smdp_address: str = "smdp.resim.test"  # FQDN in activation codes unless confirmOrder names one
    smdp_id: str = "smdp-emulator"  # functionRequesterIdentifier the SM-DP+ uses in callbacks
    smdp_callback_token: SecretStr = SecretStr("")  # dev: derived from the secret key
    smdp_client_cert: Path | None = None
    smdp_client_key: Path | None = None
    smdp_ca_bundle: Path | None = None
    # ES2+ callbacks over mutual TLS (docs/operations.md, "ES2+ over mutual TLS").
    # `resim serve` serves HTTPS with this certificate and key; with a client CA
    # bundle it asks every client for a certificate (optional: browsers send
    # none), refuses one the CA did not issue, and then accepts callbacks only
    # from a certificate in RESIM_SMDP_CALLBACK_CLIENTS (JSON list, see
    # Es2CallbackClient), never with the bearer token. Behind a proxy that
    # terminates TLS, leave these unset: the bearer token authenticates.
    api_tls_cert_file: Path | None = None
    api_tls_key_file: Path | None = None
    api_tls_client_ca_file: Path | None = None
    smdp_callback_clients: list[Es2CallbackClient] = Field(default_factory=list)
    smdp_timeout_seconds: float = Field(10.0, gt=0)

    # Lost install callbacks (issue 13, finding 6; services/provisioning/reconcile.py): a ready
    # request not reported installed this long after its code was issued is
    # checked, then again at doubling intervals (at most the maximum) until the
    # code expires; the customer's "I have installed it" checks at once.
    reconcile_after_seconds: float = Field(900.0, gt=0)
    reconcile_max_interval_seconds: float = Field(6 * 3600.0, gt=0)
    # Ask the core network whether the new SIM's IMSI has attached (an adapter
    # that cannot tell says so, and the check moves on to the SM-DP+).
    reconcile_ask_core: bool = True
    # Ask the SM-DP+ for the profile's state. Standard ES2+ has no such query:
    # "none", or "emulator" (resim's SM-DP+ emulator's non-standard admin
    # endpoint at RESIM_SMDP_URL; for tests and the demo, refused in production).
    smdp_status_query: Literal["none", "emulator"] = "none"

    # The core network (HLR/HSS) resim moves numbers in (docs/operations.md,
    # "Choosing the core network"): "builtin" (resim's own tables in its
    # database; the embedded default) or "osmo-hlr" (Osmocom's HLR over its
    # CTRL and VTY interfaces). A new adapter adds its name here and a branch in
    # bootstrap.build_core_network, with settings of its own prefixed by it.
    core_network: Literal["builtin", "osmo-hlr", "pyhss"] = "builtin"
    # osmo-hlr: CTRL (reads, numbers, keys) and VTY (network access: only the
    # VTY makes osmo-hlr detach an attached phone). The CTRL host is required
    # with osmo-hlr (the demo starts its own when it is empty); the VTY host
    # defaults to it. The timeout bounds connecting and each answer.
    osmo_hlr_ctrl_host: str = ""
    osmo_hlr_ctrl_port: int = Field(4259, ge=1, le=65535)
    osmo_hlr_vty_host: str = ""
    osmo_hlr_vty_port: int = Field(4258, ge=1, le=65535)
    osmo_hlr_timeout_seconds: float = Field(5.0, gt=0, le=120)
    # pyhss: its REST API (docs/pyhss.md). The URL is required with pyhss; the
    # provisioning key is PyHSS's hss.provisioning_key (when lock_provisioning is
    # on); new subscribers get default_apn and apn_list (PyHSS apn_ids).
    pyhss_url: str = ""
    pyhss_provisioning_key: SecretStr = SecretStr("")
    pyhss_default_apn: int = Field(1, ge=1)
    pyhss_apn_list: str = Field("1", pattern=r"^[0-9]+(,[0-9]+)*$")
    pyhss_timeout_seconds: float = Field(5.0, gt=0, le=120)

    # Mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8625, ge=1, le=65535)
    smtp_sender: str = "resim <no-reply@resim.test>"
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None

    # SMS gateway (JSON over HTTP, see resim.adapters.sms.http); dev: the capture on loopback
    sms_gateway_url: str = "http://127.0.0.1:8626/messages"
    sms_gateway_token: SecretStr = SecretStr("")
    sms_sender: str = "resim"

    # Worker
    worker_concurrency: int = Field(32, ge=1, le=1024)
    job_lease_seconds: float = Field(60.0, gt=0)
    job_max_attempts: int = Field(12, ge=1)
    job_backoff_base_seconds: float = Field(1.0, gt=0)
    job_backoff_cap_seconds: float = Field(300.0, gt=0)
    worker_poll_seconds: float = Field(0.2, gt=0)
    # Done jobs (their payloads hold sealed personal data) are deleted this many
    # days after they finished, by every worker once an hour and by
    # `resim jobs prune`. Dead jobs stay until an operator has looked at them.
    job_retention_days: float = Field(7.0, gt=0, le=3650)
    job_prune_interval_seconds: float = Field(3600.0, gt=0)

    # SEC-03: failed verification attempts (and, counted apart, staff sign-ins) from
    # one source address per window (the brand's failure_window_hours) before
    # reviewers are alerted. A ceiling, never a block: one address is often many
    # people (a shop's Wi-Fi, a carrier NAT); the one who fails is throttled per
    # request, account and staff member (issue 12, services/verification/attempts.py).
    ip_max_failures: int = Field(50, ge=1)
    # SEC-07 new_country: a CSV of the operator's address ranges -> country
    # (resim.adapters.geo.ranges); a self-service request's country is derived
    # from its source address with it. None: every country is unknown, and the
    # brand's missing_signal policy decides. resim downloads no database.
    geo_ranges_file: Path | None = None
    # argon2id cost of new PIN and password hashes (RFC 9106 section 4; the
    # default is its second, low-memory profile). Tune to the hardware; existing
    # hashes keep the cost they were made with. Production refuses less than
    # OWASP's floor (19 MiB, 2 passes); the test suite uses the minimum.
    argon2_time_cost: int = Field(3, ge=1, le=100)
    argon2_memory_kib: int = Field(65536, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(4, ge=1, le=64)
    # SEC-09: audit rows are kept at least three years; `resim audit prune` honours this.
    audit_retention_days: int = Field(1095, ge=1095)

    # CAMARA SIM Swap subscriptions (docs/camara-subscriptions.md). Sinks must be
    # https://; ``camara_sink_allow_http_loopback`` also accepts http:// to a
    # loopback address, for tests and the demo only (refused in production).
    camara_sink_allow_http_loopback: bool = False
    # Sinks must resolve to public addresses only (SSRF, issue 13). For a lab whose
    # relying parties listen on a private network, list those networks here
    # (comma-separated CIDRs, e.g. "10.20.0.0/16,fd00:20::/64"); never 0.0.0.0/0.
    camara_sink_allow: str = ""
    camara_sink_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # CloudEvents ``source`` of notifications; empty: <public_base_url>/sim-swap-subscriptions/v0.3
    camara_event_source: str = ""
    # The subscription-ended event (ACCESS_TOKEN_EXPIRED) is sent this long
    # before the sink's access token expires, while the token still works.
    camara_token_notice_seconds: float = Field(60.0, ge=0)

    # CAMARA API access tokens (docs/camara.md). Empty issuer / audience: the
    # public base URL. Empty JWKS URL: resim's own issuer (key in data_dir,
    # JWKS at /.well-known/jwks.json; `resim token issue`).
    camara_issuer: str = ""
    camara_audience: str = ""
    camara_jwks_url: str = ""
    camara_jwks_min_refresh_seconds: float = Field(30.0, ge=0)
    camara_token_leeway_seconds: float = Field(30.0, ge=0, le=300)
    camara_required_purpose: str = ""  # e.g. dpv:FraudPreventionAndDetection; empty: any
    # Which CAMARA SIM Swap release the API speaks (docs/camara.md, "Version mode"):
    # 2.1 = sim-swap 2.1.0 + subscriptions 0.3.0; 2.2 = the r4.1 release candidates.
    camara_version: Literal["2.1", "2.2"] = "2.1"
    # Per client_id token bucket (shared by the API processes, below); 0 disables.
    camara_rate_per_second: float = Field(50.0, ge=0)
    camara_burst: int = Field(100, ge=1)
    # The buckets live in the database, shared by every API process (issue 15);
    # false: each process has its own (N processes allow N times the rate).
    camara_rate_limit_shared: bool = True
    # How long a brand's CAMARA policy (legal limit) is cached in each API process.
    camara_policy_cache_seconds: float = Field(30.0, ge=0)
    # Mounts POST /bench/noop (the CAMARA benchmark's baseline); never in production.
    bench_endpoints: bool = False

    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("RESIM_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("osmo_hlr_ctrl_host", "osmo_hlr_vty_host")
    @classmethod
    def _host_name(cls, value: str) -> str:
        value = value.strip()
        if not value or re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?", value):
            return value
        try:
            return str(ipaddress.ip_address(value))  # IPv6 without brackets
        except ValueError:
            raise ValueError("a host name or IP address, without scheme or port") from None

    @field_validator("pyhss_url")
    @classmethod
    def _pyhss_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("an http:// or https:// URL of PyHSS's API, e.g. http://hss:8080")
        return value

    @field_validator("camara_sink_allow")
    @classmethod
    def _sink_networks(cls, value: str) -> str:
        parse_allow_list(value)  # ValueError names the bad entry
        return value

    @property
    def camara_sink_rules(self) -> SinkAddressRules:
        """Where sinks may be: public addresses, the allow-list, and loopback when
        ``camara_sink_allow_http_loopback`` is on (tests and the demo)."""
        return SinkAddressRules(
            allow=parse_allow_list(self.camara_sink_allow),
            allow_loopback=self.camara_sink_allow_http_loopback,
        )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        networks = []
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            try:
                networks.append(str(ipaddress.ip_network(text, strict=False)))
            except ValueError:
                raise ValueError(
                    "RESIM_TRUSTED_PROXIES takes IP addresses or CIDR networks, comma separated"
                ) from None
        return networks

    @model_validator(mode="after")
    def _no_plain_http_sinks_in_production(self) -> Settings:
        if self.environment == "production" and self.camara_sink_allow_http_loopback:
            raise ValueError("RESIM_CAMARA_SINK_ALLOW_HTTP_LOOPBACK is for tests and the demo")
        return self

    @model_validator(mode="after")
    def _no_emulator_query_in_production(self) -> Settings:
        if self.environment == "production" and self.smdp_status_query == "emulator":
            raise ValueError(
                "RESIM_SMDP_STATUS_QUERY=emulator asks resim's SM-DP+ emulator (ES2+ has no"
                " status query); it is for tests and the demo"
            )
        return self

    @model_validator(mode="after")
    def _api_tls(self) -> Settings:
        if (self.api_tls_key_file or self.api_tls_client_ca_file) and not self.api_tls_cert_file:
            raise ValueError(
                "RESIM_API_TLS_CERT_FILE is needed for the other RESIM_API_TLS_ settings"
            )
        if self.smdp_callback_clients and not self.api_tls_client_ca_file:
            raise ValueError(
                "RESIM_SMDP_CALLBACK_CLIENTS needs RESIM_API_TLS_CLIENT_CA_FILE (client"
                " certificates are verified against it)"
            )
        if self.api_tls_client_ca_file and not self.smdp_callback_clients:
            raise ValueError(
                "RESIM_API_TLS_CLIENT_CA_FILE is set but RESIM_SMDP_CALLBACK_CLIENTS maps no"
                " certificate to an SM-DP+: no callback could be accepted"
            )
        return self

    @property
    def callback_mtls(self) -> bool:
        """Whether ES2+ callbacks are authenticated by client certificate (not the token)."""
        return self.api_tls_client_ca_file is not None

    @model_validator(mode="after")
    def _argon2_cost(self) -> Settings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError(
                "RESIM_ARGON2_MEMORY_KIB must be at least 8 x RESIM_ARGON2_PARALLELISM"
            )
        if self.environment == "production" and (
            self.argon2_memory_kib < 19456 or self.argon2_time_cost < 2
        ):
            raise ValueError(
                "argon2 cost below OWASP's floor (RESIM_ARGON2_MEMORY_KIB >= 19456 and"
                " RESIM_ARGON2_TIME_COST >= 2) is for tests only"
            )
        return self

    @property
    def effective_camara_event_source(self) -> str:
        return self.camara_event_source or (
            self.public_base_url.rstrip("/") + "/sim-swap-subscriptions/v0.3"
        )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'resim.db'}"

    @property
    def camara_effective_issuer(self) -> str:
        return self.camara_issuer or self.public_base_url.rstrip("/")

    @property
    def camara_effective_audience(self) -> str:
        return self.camara_audience or self.public_base_url.rstrip("/")

    @property
    def camara_issuer_key_file(self) -> Path:
        return self.data_dir / "camara-issuer-key.pem"

    @property
    def mail_capture_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def sms_capture_dir(self) -> Path:
        return self.data_dir / "sms"

    def secret_key_list(self) -> list[str]:
        return [k.strip() for k in self.secret_keys.get_secret_value().split(",") if k.strip()]
