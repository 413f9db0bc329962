"""agents and the fraud team can act (issue 12, point 4)

* ``subscriber.unfreeze_*``: the first reviewer's approval of an unfreeze,
  pending until a second, different reviewer approves it (brand policy
  ``unfreeze_reviewers`` = 2).
* ``replacement_request.agent_session_id``: the console session of the agent
  who opened the request or took it over; only that session may show the
  customer the eSIM on the hand-over screen.

Revision ID: 0010_agents
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from resim.adapters.db.types import UtcDateTime

revision = "0010_agents"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unfreeze_requested_by", sa.String(120), nullable=True))
        batch_op.add_column(
            sa.Column("unfreeze_requested_at", UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("unfreeze_reason", sa.String(500), nullable=True))
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_session_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.drop_column("agent_session_id")
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("unfreeze_reason")
        batch_op.drop_column("unfreeze_requested_at")
        batch_op.drop_column("unfreeze_requested_by")
