"""what an agent compares an ID document with (issue 14)

``subscriber.birth_date`` and ``subscriber.id_document_number``: personal data,
encrypted at rest like the name and e-mail (``EncryptedText``); empty for
existing subscribers (the ID check then compares the name alone and the
document's last digits are only recorded).

Revision ID: 0014_console_counter
Revises: 0013_brand
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import resim.adapters.db.types

revision = "0014_console_counter"
down_revision = "0013_brand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("birth_date", resim.adapters.db.types.EncryptedText(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("id_document_number", resim.adapters.db.types.EncryptedText(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("id_document_number")
        batch_op.drop_column("birth_date")
