"""One typed settings object, read from ``RESIM_*`` environment variables.

Only the composition root (``resim.bootstrap``) and the CLI read it; everything
else is handed what it needs. Secrets are ``SecretStr``. The defaults are the
embedded set-up: a SQLite file under ``var/``, the built-in SM-DP+ emulator,
the built-in core network and mail captured on loopback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # SM-DP+ (ES2+)
    smdp_url: str = "http://127.0.0.1:8700"
    smdp_requester_id: str = "resim-operator"
    smdp_address: str = "smdp.resim.test"  # FQDN in activation codes unless confirmOrder names one
    smdp_id: str = "smdp-emulator"  # functionRequesterIdentifier the SM-DP+ uses in callbacks
    smdp_callback_token: SecretStr = SecretStr("")  # dev: derived from the secret key
    smdp_client_cert: Path | None = None
    smdp_client_key: Path | None = None
    smdp_ca_bundle: Path | None = None
    smdp_timeout_seconds: float = Field(10.0, gt=0)

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

    # SEC-03: failed verification attempts from one source address per window
    # (the brand's failure_window_hours) before it is blocked and reviewers alerted.
    ip_max_failures: int = Field(50, ge=1)
    # SEC-09: audit rows are kept at least three years; `resim audit prune` honours this.
    audit_retention_days: int = Field(1095, ge=1095)

    # CAMARA SIM Swap subscriptions (docs/camara-subscriptions.md). Sinks must be
    # https://; ``camara_sink_allow_http_loopback`` also accepts http:// to a
    # loopback address, for tests and the demo only (refused in production).
    camara_sink_allow_http_loopback: bool = False
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
    # Per client_id token bucket, per API process; 0 disables.
    camara_rate_per_second: float = Field(50.0, ge=0)
    camara_burst: int = Field(100, ge=1)
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

    @model_validator(mode="after")
    def _no_plain_http_sinks_in_production(self) -> Settings:
        if self.environment == "production" and self.camara_sink_allow_http_loopback:
            raise ValueError("RESIM_CAMARA_SINK_ALLOW_HTTP_LOOPBACK is for tests and the demo")
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
