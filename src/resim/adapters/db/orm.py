"""Tables, and the imperative mapping of the domain classes onto them.

Invariants enforced by the database as well as by the services:
1. ``sim.bound_line_id`` is UNIQUE: a line has at most one bound (active or
   suspended) SIM; the domain keeps the column equal to ``line_id`` while bound
   and NULL otherwise.
2. ``replacement_request.open_line_id`` is UNIQUE: at most one open request per
   line; NULL once the request reaches a terminal state. Two concurrent
   requests for one line: the second INSERT fails, whatever the isolation level.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry

from resim.adapters.db.types import EncryptedText, UtcDateTime
from resim.domain import loss, model, security
from resim.domain.workflow import State

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
mapper_registry = registry(metadata=metadata)


def _enum(cls: Any, name: str) -> sa.Enum:
    # Stored as strings with a CHECK constraint; values are the enum's values.
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


brand = sa.Table(
    "brand",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("policy_data", sa.JSON, nullable=False),
)

subscriber = sa.Table(
    "subscriber",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    # Personal data is encrypted at rest (SEC-10); subscribers are found by their lines.
    sa.Column("name", EncryptedText, nullable=False),
    sa.Column("email", EncryptedText, nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("email_changed_at", UtcDateTime),
    sa.Column("pin_hash", sa.String(200)),
    sa.Column("alt_msisdn", EncryptedText),
    sa.Column("postal_address", EncryptedText),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("totp_secret", EncryptedText),
    sa.Column("password_changed_at", UtcDateTime),
    sa.Column("address_changed_at", UtcDateTime),
    sa.Column("replacements_frozen_at", UtcDateTime),
    sa.Column("frozen_reason", sa.String(200)),
    # Issue 12: the first reviewer's approval of an unfreeze, awaiting a second one.
    sa.Column("unfreeze_requested_by", sa.String(120)),
    sa.Column("unfreeze_requested_at", UtcDateTime),
    sa.Column("unfreeze_reason", sa.String(500)),
    sa.Column("fraud_flags", sa.Integer, nullable=False, default=0),
    sa.Column("known_countries", sa.JSON, nullable=False, default=list),
    sa.Column("known_devices", sa.JSON, nullable=False, default=list),
    # SEC-02: the last TOTP time step accepted, so a used code cannot be replayed.
    sa.Column("totp_last_step", sa.BigInteger),
)

line = sa.Table(
    "line",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("msisdn", sa.String(16), nullable=False, unique=True),
    sa.Column("subscriber_id", sa.ForeignKey("subscriber.id"), nullable=False, index=True),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("sim_change_locked", sa.Boolean, nullable=False, default=False),
    sa.Column(
        "status",
        _enum(model.LineStatus, "line_status"),
        nullable=False,
        default=model.LineStatus.ACTIVE,
    ),
    sa.Column("lock_changed_at", UtcDateTime),
    sa.Column("unlock_effective_at", UtcDateTime),
    sa.Column("ported_in_at", UtcDateTime),
    # SEC-05: the e-mail code for unlocking the SIM-change lock (hash only).
    sa.Column("unlock_otp_hash", sa.String(128)),
    sa.Column("unlock_otp_expires_at", UtcDateTime),
    # Issue 15: a number that has never had a SIM (reserved, ported in and not yet
    # activated). False for every line that was ever bound to a SIM.
    sa.Column("awaiting_sim", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Loss reports: the e-mail code for blocking the SIM or lifting the block (hash only).
    sa.Column("loss_otp_hash", sa.String(128)),
    sa.Column("loss_otp_expires_at", UtcDateTime),
)

sim = sa.Table(
    "sim",
    metadata,
    sa.Column("iccid", sa.String(20), primary_key=True),
    sa.Column("imsi", sa.String(15), nullable=False, unique=True),
    sa.Column("form", _enum(model.SimForm, "sim_form"), nullable=False),
    sa.Column("state", _enum(model.SimState, "sim_state"), nullable=False),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    sa.Column("line_id", sa.ForeignKey("line.id"), index=True),
    sa.Column("bound_line_id", sa.ForeignKey("line.id"), unique=True),
    sa.Column("profile_type", sa.String(64)),
    sa.Column("ki", EncryptedText),
    sa.Column("opc", EncryptedText),
    sa.Index("ix_sim_stock", "brand_id", "form", "state", "profile_type"),
)

replacement_request = sa.Table(
    "replacement_request",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", _enum(model.RequestKind, "request_kind"), nullable=False),
    sa.Column("line_id", sa.ForeignKey("line.id"), nullable=False, index=True),
    sa.Column("open_line_id", sa.ForeignKey("line.id"), unique=True),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    sa.Column("subscriber_id", sa.ForeignKey("subscriber.id"), nullable=False),
    sa.Column("msisdn", sa.String(16), nullable=False),
    sa.Column("reason", _enum(model.Reason, "replacement_reason"), nullable=False),
    sa.Column("channel", _enum(model.Channel, "request_channel"), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("state", _enum(State, "request_state"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("old_iccid", sa.String(20)),
    sa.Column("eid", sa.String(32)),
    sa.Column("target_form", _enum(model.SimForm, "target_form"), nullable=False),
    sa.Column("otp_hash", sa.String(128)),
    sa.Column("otp_expires_at", UtcDateTime),
    sa.Column("otp_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("verified_at", UtcDateTime),
    sa.Column("verification_methods", sa.JSON, nullable=False),
    sa.Column("verification_evidence", sa.JSON, nullable=False, default=list),
    sa.Column("step_up_methods", sa.JSON),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("device_id", sa.String(64)),
    sa.Column("country", sa.String(2)),
    sa.Column("risk_outcome", _enum(model.RiskOutcome, "risk_outcome")),
    sa.Column("risk_reasons", sa.JSON, nullable=False),
    sa.Column("reviewed_by", sa.String(120)),
    sa.Column("review_note", sa.Text),
    sa.Column("required_approvals", sa.Integer, nullable=False, default=1),
    sa.Column("approvals", sa.JSON, nullable=False, default=list),
    sa.Column("lock_override", sa.Boolean, nullable=False, default=False),
    sa.Column("cooling_off_until", UtcDateTime),
    sa.Column("fraud_reported_at", UtcDateTime),
    sa.Column("fee_minor", sa.Integer, nullable=False, default=0),
    sa.Column("fee_currency", sa.String(3)),
    sa.Column("new_iccid", sa.String(20), unique=True),
    # The MatchingID with the public SM-DP+ address *is* the activation code
    # (SEC-10): encrypted like it. ES2+ callbacks find requests by ICCID, never by it.
    sa.Column("matching_id", EncryptedText),
    sa.Column("smdp_step", sa.String(16)),
    sa.Column("activation_code_enc", sa.Text),
    sa.Column("activation_expires_at", UtcDateTime),
    sa.Column("install_failed_at", UtcDateTime),
    sa.Column("installed_at", UtcDateTime),
    sa.Column("old_sim_suspended", sa.Boolean, nullable=False, default=False),
    sa.Column("completed_at", UtcDateTime),
    sa.Column("failure_code", sa.String(64)),
    sa.Column("failure_reason", sa.Text),
    sa.Column("not_me_token_hash", sa.String(128), unique=True),
    # Issue 12: the console session that opened or took over the request (hand-over screen).
    sa.Column("agent_session_id", sa.String(40)),
    sa.Column("delivery_mode", _enum(model.DeliveryMode, "delivery_mode")),
    sa.Column("dispatched_at", UtcDateTime),
    sa.Column("shipment_ref", sa.String(64)),
    # The portal language the customer opened the request in (messages use it).
    sa.Column("language", sa.String(16)),
    # A brand's staff and clients list their brand's requests, newest first (tenancy).
    sa.Index("ix_request_brand_created", "brand_id", "created_at"),
)

# A line's SIM blocked because the phone is lost or stolen (resim.domain.loss).
loss_report = sa.Table(
    "loss_report",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("line_id", sa.ForeignKey("line.id"), nullable=False, index=True),
    # UNIQUE: at most one open report per line; NULL once it is closed.
    sa.Column("open_line_id", sa.ForeignKey("line.id"), unique=True),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    sa.Column("subscriber_id", sa.ForeignKey("subscriber.id"), nullable=False),
    sa.Column("msisdn", sa.String(16), nullable=False),
    sa.Column("iccid", sa.String(20), nullable=False, index=True),
    sa.Column("reason", _enum(loss.LossReason, "loss_reason"), nullable=False),
    sa.Column("channel", _enum(loss.LossChannel, "loss_channel"), nullable=False),
    sa.Column("opened_by", sa.String(120), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False, default=list),
    sa.Column("request_id", sa.String(40)),
    sa.Column("state", _enum(loss.LossState, "loss_state"), nullable=False),
    sa.Column("suspended_at", UtcDateTime),
    sa.Column("closed_at", UtcDateTime),
    sa.Column("closed_by", sa.String(120)),
    sa.Column("close_evidence", sa.JSON, nullable=False, default=list),
    sa.Column("closing_request_id", sa.String(40)),
)

sim_change = sa.Table(
    "sim_change",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("msisdn", sa.String(16), nullable=False),
    sa.Column("line_id", sa.ForeignKey("line.id"), nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
    sa.Column("new_iccid", sa.String(20), nullable=False),
    sa.Column("old_iccid", sa.String(20)),
    sa.Column("request_id", sa.ForeignKey("replacement_request.id"), unique=True),
    sa.Index("ix_sim_change_msisdn_at", "msisdn", "changed_at"),
)

audit_event = sa.Table(
    "audit_event",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("object_type", sa.String(40), nullable=False),
    sa.Column("object_id", sa.String(40), nullable=False, index=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("source", sa.String(64)),
    # SEC-09: hash = SHA-256(prev_hash + canonical JSON of the row); see domain/audit_chain.
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("hash", sa.String(64)),
)

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
    sa.Column("role", _enum(security.Role, "staff_role"), nullable=False),
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
    sa.Column("kind", _enum(security.SessionKind, "session_kind"), nullable=False),
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


def _map() -> None:
    mapper_registry.map_imperatively(model.Brand, brand)
    mapper_registry.map_imperatively(model.Subscriber, subscriber)
    mapper_registry.map_imperatively(model.Line, line)
    mapper_registry.map_imperatively(model.Sim, sim)
    mapper_registry.map_imperatively(model.ReplacementRequest, replacement_request)
    mapper_registry.map_imperatively(model.SimChange, sim_change)
    mapper_registry.map_imperatively(loss.LossReport, loss_report)
    mapper_registry.map_imperatively(security.StaffUser, staff_user)
    mapper_registry.map_imperatively(security.ApiClient, api_client)
    mapper_registry.map_imperatively(security.AuthSession, auth_session)
    mapper_registry.map_imperatively(security.IdentityCheck, identity_check)
    mapper_registry.map_imperatively(security.Alert, alert)
    mapper_registry.map_imperatively(
        model.AuditEvent,
        audit_event,
        exclude_properties=["seq"],
        primary_key=[audit_event.c.id],
    )


def start_mappers() -> None:
    """Map the domain classes once per process (idempotent)."""
    if not getattr(start_mappers, "_done", False):
        _map()
        start_mappers._done = True  # type: ignore[attr-defined]
