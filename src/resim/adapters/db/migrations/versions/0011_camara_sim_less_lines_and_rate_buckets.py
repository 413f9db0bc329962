"""numbers without a SIM, and CAMARA rate buckets shared by API processes (issue 15)

``line.awaiting_sim``: a number that has never had a SIM (reserved, ported in
and not yet activated); every existing line had one, so the default is false.
``camara_rate_bucket``: one token bucket per CAMARA client, updated atomically
by every API process (adapters/db/rate_buckets.py).

Revision ID: 0011_camara
Revises: 0010_agents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_camara"
down_revision = "0010_agents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("awaiting_sim", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "camara_rate_bucket",
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_camara_rate_bucket")),
    )


def downgrade() -> None:
    op.drop_table("camara_rate_bucket")
    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.drop_column("awaiting_sim")
