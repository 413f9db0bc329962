"""requests stuck waiting for a step-up get their expiry job (issue 13, finding 4)

Before this revision a verified request the risk check held for a stronger
method (``step_up_methods``) had no deadline: it held its line, and a lost or
stolen SIM stayed barred, for ever. New step-ups enqueue
``request.expire_step_up`` when they are asked for; this data-only revision
gives every request already in ``verified`` one such job, due at once. The
handler (``services.cancel.expire_step_up``) leaves a request that is not
waiting for a step-up alone, expires one past its deadline and re-enqueues
itself for a younger one. No schema change.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

from resim.adapters.db.types import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KIND = "request.expire_step_up"

# Only the columns used here, as they stand at revision 0005.
_request = sa.table("replacement_request", sa.column("id", sa.String), sa.column("state"))
_job = sa.table(
    "job",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("request_id", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("state", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("run_after", UtcDateTime(timezone=True)),
    sa.column("created_at", UtcDateTime(timezone=True)),
)


def upgrade() -> None:
    conn = op.get_bind()
    stuck = conn.execute(sa.select(_request.c.id).where(_request.c.state == "verified")).all()
    now = dt.datetime.now(dt.UTC)
    due = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # at once, whatever the workers' clock
    rows = [
        {
            "id": uuid.uuid4().hex,
            "kind": KIND,
            "request_id": request_id,
            "payload": {},
            "state": "pending",
            "attempts": 0,
            "run_after": due,
            "created_at": now,
        }
        for (request_id,) in stuck
    ]
    if rows:
        op.bulk_insert(_job, rows)


def downgrade() -> None:
    # Code before this revision has no handler for these jobs.
    op.execute(sa.delete(_job).where(_job.c.kind == KIND, _job.c.state == "pending"))
