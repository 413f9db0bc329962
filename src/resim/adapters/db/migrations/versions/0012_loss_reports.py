"""Loss reports (issue 12): a lost or stolen SIM stays blocked apart from any request

* the table ``loss_report`` (``resim.domain.loss``): at most one open report per
  line (``open_line_id`` UNIQUE);
* ``line.loss_otp_hash`` / ``line.loss_otp_expires_at``: the e-mail code for
  blocking the SIM or lifting the block;
* every SIM that an open lost or stolen request holds suspended today gets an
  open report (channel ``replacement``, that request), so that cancelling the
  request after the upgrade leaves it blocked as it would a new one.

Revision ID: 0012_loss
Revises: 0011_camara
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

import resim.adapters.db.types

revision = "0012_loss"
down_revision = "0011_camara"
branch_labels = None
depends_on = None


def _utc() -> resim.adapters.db.types.UtcDateTime:
    return resim.adapters.db.types.UtcDateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=24)


def upgrade() -> None:
    op.create_table(
        "loss_report",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("open_line_id", sa.String(length=40), nullable=True),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("subscriber_id", sa.String(length=40), nullable=False),
        sa.Column("msisdn", sa.String(length=16), nullable=False),
        sa.Column("iccid", sa.String(length=20), nullable=False),
        sa.Column("reason", _enum("loss_reason", "lost", "stolen"), nullable=False),
        sa.Column(
            "channel",
            _enum("loss_channel", "portal", "agent", "api", "replacement"),
            nullable=False,
        ),
        sa.Column("opened_by", sa.String(length=120), nullable=False),
        sa.Column("opened_at", _utc(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.Column(
            "state", _enum("loss_state", "open", "resolved", "lifted", "voided"), nullable=False
        ),
        sa.Column("suspended_at", _utc(), nullable=True),
        sa.Column("closed_at", _utc(), nullable=True),
        sa.Column("closed_by", sa.String(length=120), nullable=True),
        sa.Column("close_evidence", sa.JSON(), nullable=False),
        sa.Column("closing_request_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brand.id"], name=op.f("fk_loss_report_brand_id_brand")
        ),
        sa.ForeignKeyConstraint(["line_id"], ["line.id"], name=op.f("fk_loss_report_line_id_line")),
        sa.ForeignKeyConstraint(
            ["open_line_id"], ["line.id"], name=op.f("fk_loss_report_open_line_id_line")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscriber.id"],
            name=op.f("fk_loss_report_subscriber_id_subscriber"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_report")),
        sa.UniqueConstraint("open_line_id", name=op.f("uq_loss_report_open_line_id")),
    )
    with op.batch_alter_table("loss_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loss_report_line_id"), ["line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loss_report_iccid"), ["iccid"], unique=False)
    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.add_column(sa.Column("loss_otp_hash", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("loss_otp_expires_at", _utc(), nullable=True))
    _reports_for_suspended_requests(op.get_bind())


def _reports_for_suspended_requests(bind: sa.Connection) -> None:
    rows = bind.execute(
        sa.text(
            "SELECT r.id, r.line_id, r.brand_id, r.subscriber_id, r.msisdn, r.old_iccid,"
            " r.reason, r.verified_at, r.updated_at FROM replacement_request r"
            " JOIN sim s ON s.iccid = r.old_iccid"
            " WHERE r.open_line_id IS NOT NULL AND r.old_sim_suspended"
            " AND r.reason IN ('lost', 'stolen') AND s.state = 'suspended'"
        )
    ).all()
    for row in rows:
        bind.execute(
            sa.text(
                "INSERT INTO loss_report (id, line_id, open_line_id, brand_id, subscriber_id,"
                " msisdn, iccid, reason, channel, opened_by, opened_at, evidence, request_id,"
                " state, suspended_at, close_evidence) VALUES (:id, :line, :line, :brand, :sub,"
                " :msisdn, :iccid, :reason, 'replacement', 'migration', :at, '[]', :rid,"
                " 'open', :at, '[]')"
            ),
            {
                "id": uuid.uuid4().hex,
                "line": row.line_id,
                "brand": row.brand_id,
                "sub": row.subscriber_id,
                "msisdn": row.msisdn,
                "iccid": row.old_iccid,
                "reason": row.reason,
                "at": row.verified_at or row.updated_at,
                "rid": row.id,
            },
        )


def downgrade() -> None:
    with op.batch_alter_table("line", schema=None) as batch_op:
        batch_op.drop_column("loss_otp_expires_at")
        batch_op.drop_column("loss_otp_hash")
    with op.batch_alter_table("loss_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loss_report_iccid"))
        batch_op.drop_index(batch_op.f("ix_loss_report_line_id"))
    op.drop_table("loss_report")
