"""The tables of resim's machinery: the audit chain's head, staff, API clients,
sessions and identity checks, attempt counters and alerts, the outbox (jobs
and the attempt rows of peer calls) and CAMARA's rate buckets, subscriptions
and events."""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db.orm.base import enum_column, metadata
from resim.adapters.db.types import EncryptedText, UtcDateTime
from resim.domain import security

# The end of the audit hash chain: one row (id=1), locked by every transaction
# that appends audit events, just before it commits, so the chain has one order.
audit_chain_head = sa.Table(
    "audit_chain_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    # Where verification starts: the last row removed by ``resim audit prune``
    # (seq 0 and the all-zero hash while nothing was pruned).
    sa.Column("anchor_seq", sa.Integer, nullable=False, default=0),
    sa.Column("anchor_hash", sa.String(64), nullable=False, default="0" * 64),
    sa.Column("anchor_at", UtcDateTime),
)

staff_user = sa.Table(
    "staff_user",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("role", enum_column(security.Role, "staff_role"), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("email", EncryptedText),
    sa.Column("totp_secret", EncryptedText),
    sa.Column("brand_id", sa.ForeignKey("brand.id")),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_login_at", UtcDateTime),
)

api_client = sa.Table(
    "api_client",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("brand_id", sa.ForeignKey("brand.id")),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime),
)

auth_session = sa.Table(
    "auth_session",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", enum_column(security.SessionKind, "session_kind"), nullable=False),
    sa.Column("staff_id", sa.ForeignKey("staff_user.id")),
    sa.Column("line_id", sa.ForeignKey("line.id")),
    sa.Column("request_id", sa.String(40)),
    sa.Column("methods", sa.JSON, nullable=False),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)

identity_check = sa.Table(
    "identity_check",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("staff_id", sa.ForeignKey("staff_user.id"), nullable=False),
    sa.Column("line_id", sa.ForeignKey("line.id"), nullable=False),
    sa.Column("method", sa.String(24), nullable=False),
    sa.Column("document_type", sa.String(24)),
    sa.Column("document_last_digits", sa.String(4)),
    sa.Column("request_id", sa.String(40)),
    sa.Column("verified_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Index("ix_identity_check_staff_line", "staff_id", "line_id"),
)

# SEC-03: failed attempts per scope ("request:<id>", "account:<subscriber id>",
# "agent:<staff id>", "ip:<address>"). In the database, so the counts survive a
# restart and are shared by every API process.
attempt_counter = sa.Table(
    "attempt_counter",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("last_failure_at", UtcDateTime),
    sa.Column("blocked_until", UtcDateTime),
)

alert = sa.Table(
    "alert",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject_type", sa.String(40), nullable=False),
    sa.Column("subject_id", sa.String(40), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("acknowledged_by", sa.String(120)),
    sa.Column("acknowledged_at", UtcDateTime),
)

# The outbox: every external effect is a job, written in the transaction that needs it.
job = sa.Table(
    "job",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(60), nullable=False),
    sa.Column("request_id", sa.String(40), index=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # pending|running|done|dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("run_after", UtcDateTime, nullable=False),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("worker_id", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Index("ix_job_due", "state", "run_after"),
)

# One row per call to a peer, committed before the call; its id is the
# idempotency key (ES2+ functionCallIdentifier, SMTP Message-ID seed).
external_call = sa.Table(
    "external_call",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("job_id", sa.ForeignKey("job.id"), nullable=False, index=True),
    sa.Column("request_id", sa.String(40), index=True),
    sa.Column("target", sa.String(60), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),  # started|succeeded|failed
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("error_code", sa.String(64)),
    sa.Column("retryable", sa.Boolean),
)


# CAMARA SIM Swap subscriptions (sim-swap-subscriptions 0.3.0). A relying party
# (``client_id``, the access token's client) sees only its own rows. The sink's
# access token is a secret of the relying party: encrypted at rest, never
# returned, never logged.
# One token bucket per CAMARA client, shared by every API process (issue 15):
# ``tokens`` left at ``at`` (epoch seconds), and whether the last take was
# granted. Changed only by one atomic upsert (adapters/db/rate_buckets.py).
camara_rate_bucket = sa.Table(
    "camara_rate_bucket",
    metadata,
    sa.Column("client_id", sa.String(200), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False),
)

camara_subscription = sa.Table(
    "camara_subscription",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("client_id", sa.String(200), nullable=False, index=True),
    sa.Column("phone_number", sa.String(16), nullable=False, index=True),
    # True when created with a 3-legged token: its events and views omit the number.
    sa.Column("three_legged", sa.Boolean, nullable=False),
    sa.Column("protocol", sa.String(8), nullable=False),
    sa.Column("sink", sa.Text, nullable=False),
    sa.Column("sink_credential_type", sa.String(16)),
    sa.Column("sink_access_token", EncryptedText),
    sa.Column("sink_token_expires_at", UtcDateTime),
    sa.Column("types", sa.JSON, nullable=False),
    sa.Column("expire_time", UtcDateTime),  # config.subscriptionExpireTime as asked
    sa.Column("max_events", sa.Integer),  # config.subscriptionMaxEvents
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("events_sent", sa.Integer, nullable=False, default=0),
    sa.Column("event_seq", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("termination_reason", sa.String(32)),
    sa.Index("ix_camara_subscription_phone_status", "phone_number", "status"),
)

# The notification outbox: one row per CloudEvent, written in the transaction
# that caused it (a cut-over, an end). ``id`` is the CloudEvents id, stable across
# retries. ``state``: pending -> sending (an attempt was committed before the
# POST) -> delivered | failed. Retry timing lives on the delivering job.
camara_event = sa.Table(
    "camara_event",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "subscription_id", sa.ForeignKey("camara_subscription.id"), nullable=False, index=True
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("type", sa.String(80), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("job_id", sa.String(40)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_attempt_at", UtcDateTime),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("last_status", sa.Integer),  # the sink's last HTTP status, if it answered
    sa.Column("last_error", sa.Text),  # never a token or a response body
    sa.UniqueConstraint("subscription_id", "seq", name="uq_camara_event_subscription_seq"),
)
