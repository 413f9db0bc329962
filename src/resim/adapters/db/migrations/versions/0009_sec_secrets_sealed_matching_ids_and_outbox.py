"""MatchingIDs and the personal data of queued messages encrypted at rest (issue 13: 2, 10)

* ``replacement_request.matching_id`` becomes an encrypted column (its values
  are Fernet tokens, longer than the old VARCHAR(64)); clear values are
  encrypted. With the public SM-DP+ address a MatchingID is the activation code.
* ``mail.send`` / ``sms.send`` jobs: the recipient and the rendering context
  (the customer's name among them) move into one sealed token, as new jobs
  have them (``resim.services.notifications.notify.message_payload``); an already encrypted
  ``secret_context`` is kept as it is.
* ``esim.cancel_order`` jobs of a reissue: the old MatchingID moves into an
  encrypted ``secret_context``.

The keys come from ``resim db upgrade`` (``config.attributes["secrets"]``).
Without keys this migration runs only when there is nothing to encrypt, and
otherwise stops and says so, rather than leave secrets in clear. The format
of the sealed token is written out here, not imported, so this file keeps
meaning what it meant when later code changes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from resim.adapters.crypto import SecretBox
from resim.adapters.db.types import EncryptedText

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FERNET_PREFIX = "gAAAAA"
BATCH = 500
MESSAGE_KINDS = ("mail.send", "sms.send")
PUBLIC_MESSAGE_KEYS = ("kind", "language", "target", "old_iccid", "secret_context")

_request = sa.table("replacement_request", sa.column("id", sa.String), sa.column("matching_id"))
_job = sa.table(
    "job", sa.column("id", sa.String), sa.column("kind", sa.String), sa.column("payload", sa.JSON)
)


class KeysNeeded(RuntimeError):
    pass


def upgrade() -> None:
    # SQLite changes the type by rebuilding the table, which other rows refer
    # to (sim_change.request_id): resim.adapters.db.migrate runs migrations
    # with SQLite's foreign keys off and checks them all before committing.
    bind = op.get_bind()
    with op.batch_alter_table("replacement_request", schema=None) as batch_op:
        batch_op.alter_column(
            "matching_id",
            existing_type=sa.String(length=64),
            type_=EncryptedText(),
            existing_nullable=True,
        )
    box: SecretBox | None = context.config.attributes.get("secrets")
    _encrypt_matching_ids(bind, box)
    _seal_jobs(bind, box)


def _need(box: SecretBox | None, what: str) -> SecretBox:
    if box is None:
        raise KeysNeeded(
            f"migration 0009 must encrypt {what} stored in clear, and was given no keys: "
            "run `resim db upgrade` with RESIM_SECRET_KEYS set (or pass secrets= to upgrade())"
        )
    return box


def _encrypt_matching_ids(bind: sa.Connection, box: SecretBox | None) -> None:
    last = ""
    while True:
        rows = bind.execute(
            sa.select(_request.c.id, _request.c.matching_id)
            .where(_request.c.matching_id.is_not(None), _request.c.id > last)
            .order_by(_request.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        clear = [r for r in rows if not str(r.matching_id).startswith(FERNET_PREFIX)]
        if clear:
            sealed = _need(box, "MatchingIDs").encrypt_many([str(r.matching_id) for r in clear])
            bind.execute(
                sa.update(_request)
                .where(_request.c.id == sa.bindparam("k"))
                .values(matching_id=sa.bindparam("v")),
                [{"k": r.id, "v": v} for r, v in zip(clear, sealed, strict=True)],
            )


def _seal_jobs(bind: sa.Connection, box: SecretBox | None) -> None:
    last = ""
    kinds = (*MESSAGE_KINDS, "esim.cancel_order")
    while True:
        rows = bind.execute(
            sa.select(_job.c.id, _job.c.kind, _job.c.payload)
            .where(_job.c.kind.in_(kinds), _job.c.id > last)
            .order_by(_job.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        updates = []
        for row in rows:
            payload = row.payload
            if isinstance(payload, str):  # some drivers hand JSON back as text
                payload = json.loads(payload)
            if not isinstance(payload, dict):
                continue
            new = _sealed_payload(row.kind, payload, box)
            if new is not None:
                updates.append({"k": row.id, "v": new})
        if updates:
            bind.execute(
                sa.update(_job)
                .where(_job.c.id == sa.bindparam("k"))
                .values(payload=sa.bindparam("v", type_=sa.JSON)),
                updates,
            )


def _sealed_payload(
    kind: str, payload: dict[str, Any], box: SecretBox | None
) -> dict[str, Any] | None:
    if kind == "esim.cancel_order":
        if not payload.get("matching_id"):
            return None
        secret = json.dumps({"matching_id": payload["matching_id"]})
        rest = {k: v for k, v in payload.items() if k != "matching_id"}
        return {**rest, "secret_context": _need(box, "MatchingIDs in jobs").encrypt(secret)}
    if "to" not in payload and "context" not in payload:
        return None  # sealed already
    sealed = json.dumps({"to": payload.get("to"), "context": payload.get("context") or {}})
    public = {k: payload[k] for k in PUBLIC_MESSAGE_KEYS if k in payload}
    return {**public, "sealed": _need(box, "message recipients and names").encrypt(sealed)}


def downgrade() -> None:
    # Undoing would write MatchingIDs and personal data back in clear, which is
    # the hole this revision closes; a database is taken back with its backup.
    raise RuntimeError(
        "revision 0009 cannot be downgraded: it encrypted MatchingIDs and message jobs; "
        "restore the backup taken before the upgrade instead"
    )
