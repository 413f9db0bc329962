"""``ix_sim_change_line_at``: a line's SIM changes found by its id

Opening a request and assessing its risk ask for the line's last replacement
(``max(changed_at)`` of its SIM changes with an old SIM). ``sim_change`` had
an index by number only, so that question read the whole table: after an
onboarding import of 300,000 SIM changes, every request paid for a full
scan. The index also serves the console's and export's per-line history and
the foreign key's checks when a line is deleted.

Revision ID: 0017_sim_change_line_idx
Revises: 0016_sim_stock_idx
"""

from __future__ import annotations

from alembic import op

revision = "0017_sim_change_line_idx"
down_revision = "0016_sim_stock_idx"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sim_change_line_at", "sim_change", ["line_id", "changed_at"])


def downgrade() -> None:
    op.drop_index("ix_sim_change_line_at", table_name="sim_change")
