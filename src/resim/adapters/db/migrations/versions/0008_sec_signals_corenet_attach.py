"""built-in core network: when an IMSI first attached (issue 13 finding 6, reconcile)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resim.adapters.db.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("corenet_subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attached_at", UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("corenet_subscriber", schema=None) as batch_op:
        batch_op.drop_column("attached_at")
