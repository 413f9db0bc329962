"""``ix_sim_stock`` holds SIMs in stock only (PostgreSQL only)

Every query through it asks for ``state = 'in_stock'``, written as a literal
(``orm.SIM_IN_STOCK``) so that any plan can prove the index's predicate. A
SIM that leaves stock no longer has an entry: the onboarding import loads a
million bound SIMs and binds each to its line with a non-HOT UPDATE, which
wrote an entry in every index, this one included. SQLite keeps its full
index (its planner matches a partial index's predicate to the query's text).

Revision ID: 0016_sim_stock_idx
Revises: 0015_sim_line_idx
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_sim_stock_idx"
down_revision = "0015_sim_line_idx"
branch_labels = None
depends_on = None

_COLUMNS = ["brand_id", "form", "state", "profile_type"]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_sim_stock", table_name="sim")
    op.create_index("ix_sim_stock", "sim", _COLUMNS, postgresql_where=sa.text("state = 'in_stock'"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_sim_stock", table_name="sim")
    op.create_index("ix_sim_stock", "sim", _COLUMNS)
