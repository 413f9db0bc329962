"""delivery modes of a replacement (issue 5: store pickup and courier)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resim.adapters.db.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "delivery_mode",
                sa.Enum(
                    "esim",
                    "pickup",
                    "courier",
                    name="delivery_mode",
                    native_enum=False,
                    create_constraint=True,
                    length=24,
                ),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("dispatched_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("shipment_ref", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.drop_column("shipment_ref")
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("delivery_mode")
