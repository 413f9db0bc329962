"""CAMARA SIM Swap subscriptions (issue 4): subscriptions and their event outbox

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import resim.adapters.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _utc() -> resim.adapters.db.types.UtcDateTime:
    return resim.adapters.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "camara_subscription",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("three_legged", sa.Boolean(), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("sink", sa.Text(), nullable=False),
        sa.Column("sink_credential_type", sa.String(length=16), nullable=True),
        sa.Column("sink_access_token", resim.adapters.db.types.EncryptedText(), nullable=True),
        sa.Column("sink_token_expires_at", _utc(), nullable=True),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("expire_time", _utc(), nullable=True),
        sa.Column("max_events", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("events_sent", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("starts_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=True),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("termination_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camara_subscription")),
    )
    with op.batch_alter_table("camara_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_camara_subscription_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_camara_subscription_phone_number"), ["phone_number"], unique=False
        )
        batch_op.create_index(
            "ix_camara_subscription_phone_status", ["phone_number", "status"], unique=False
        )
    op.create_table(
        "camara_event",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_attempt_at", _utc(), nullable=True),
        sa.Column("delivered_at", _utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["camara_subscription.id"],
            name=op.f("fk_camara_event_subscription_id_camara_subscription"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camara_event")),
        sa.UniqueConstraint("subscription_id", "seq", name="uq_camara_event_subscription_seq"),
    )
    with op.batch_alter_table("camara_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_camara_event_subscription_id"), ["subscription_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("camara_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camara_event_subscription_id"))
    op.drop_table("camara_event")
    with op.batch_alter_table("camara_subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_camara_subscription_phone_status")
        batch_op.drop_index(batch_op.f("ix_camara_subscription_phone_number"))
        batch_op.drop_index(batch_op.f("ix_camara_subscription_client_id"))
    op.drop_table("camara_subscription")
