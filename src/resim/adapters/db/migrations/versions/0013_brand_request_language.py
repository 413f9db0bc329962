"""the language a request's messages go out in (issue 12: the portal's language)

``replacement_request.language``: the locale of the portal page the customer
opened the request from (``da``, ``zh_Hans``, ...). Mail and SMS about the
request use it; without one (API, console, older requests) the subscriber's
language on file, then the brand's.

Revision ID: 0013_brand
Revises: 0012_loss
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_brand"
down_revision = "0012_loss"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.drop_column("language")
