"""The tables of the domain: brands, subscribers, lines, SIMs, replacement
requests, loss reports, SIM changes and audit events (mapped onto the domain
classes in :func:`resim.adapters.db.orm.start_mappers`)."""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db.orm.base import enum_column, metadata
from resim.adapters.db.types import EncryptedText, UtcDateTime
from resim.domain import loss, model
from resim.domain.workflow import State

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
    # Issue 14: what the agent compares an ID document with (personal data, encrypted).
    sa.Column("birth_date", EncryptedText),
    sa.Column("id_document_number", EncryptedText),
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
        enum_column(model.LineStatus, "line_status"),
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
    sa.Column("form", enum_column(model.SimForm, "sim_form"), nullable=False),
    sa.Column("state", enum_column(model.SimState, "sim_state"), nullable=False),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    sa.Column("line_id", sa.ForeignKey("line.id")),
    sa.Column("bound_line_id", sa.ForeignKey("line.id"), unique=True),
    sa.Column("profile_type", sa.String(64)),
    sa.Column("ki", EncryptedText),
    sa.Column("opc", EncryptedText),
    # On PostgreSQL without the SIMs that have no line (migration 0015): no query
    # looks for ``line_id IS NULL`` through it, and a fresh stock of a million
    # SIMs wrote a million NULL entries.
    sa.Index("ix_sim_line_id", "line_id", postgresql_where=sa.text("line_id IS NOT NULL")),
    # On PostgreSQL only SIMs in stock (migration 0016): every query through it
    # asks for them, with the state written as a literal (``SIM_IN_STOCK``) so
    # that generic plans can use it too. A bound SIM has no entry to write.
    sa.Index(
        "ix_sim_stock",
        "brand_id",
        "form",
        "state",
        "profile_type",
        postgresql_where=sa.text(f"state = '{model.SimState.IN_STOCK.value}'"),
    ),
)

# ``sim.state = 'in_stock'`` with the value in the SQL text, not a parameter: a
# plan built for any parameter value could not use the partial ``ix_sim_stock``.
SIM_IN_STOCK = sim.c.state == sa.literal_column(
    f"'{model.SimState.IN_STOCK.value}'", type_=sim.c.state.type
)

replacement_request = sa.Table(
    "replacement_request",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", enum_column(model.RequestKind, "request_kind"), nullable=False),
    sa.Column("line_id", sa.ForeignKey("line.id"), nullable=False, index=True),
    sa.Column("open_line_id", sa.ForeignKey("line.id"), unique=True),
    sa.Column("brand_id", sa.ForeignKey("brand.id"), nullable=False),
    sa.Column("subscriber_id", sa.ForeignKey("subscriber.id"), nullable=False),
    sa.Column("msisdn", sa.String(16), nullable=False),
    sa.Column("reason", enum_column(model.Reason, "replacement_reason"), nullable=False),
    sa.Column("channel", enum_column(model.Channel, "request_channel"), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("state", enum_column(State, "request_state"), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("old_iccid", sa.String(20)),
    sa.Column("eid", sa.String(32)),
    sa.Column("target_form", enum_column(model.SimForm, "target_form"), nullable=False),
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
    sa.Column("risk_outcome", enum_column(model.RiskOutcome, "risk_outcome")),
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
    sa.Column("delivery_mode", enum_column(model.DeliveryMode, "delivery_mode")),
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
    sa.Column("reason", enum_column(loss.LossReason, "loss_reason"), nullable=False),
    sa.Column("channel", enum_column(loss.LossChannel, "loss_channel"), nullable=False),
    sa.Column("opened_by", sa.String(120), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False, default=list),
    sa.Column("request_id", sa.String(40)),
    sa.Column("state", enum_column(loss.LossState, "loss_state"), nullable=False),
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
    sa.Index("ix_sim_change_line_at", "line_id", "changed_at"),
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
