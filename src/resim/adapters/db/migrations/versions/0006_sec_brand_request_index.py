"""replacement requests by brand, newest first (issue 13: lists limited to the caller's brand)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_request_brand_created", "replacement_request", ["brand_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_request_brand_created", table_name="replacement_request")
