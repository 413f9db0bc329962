"""``resim keys rotate``: re-encrypt every secret at rest under the first key (SEC-10, SEC-11).

What is encrypted, found rather than listed (a list would drift):

* every column whose type is :class:`~resim.adapters.db.types.EncryptedText`
  in the application's metadata (subscriber contact data and TOTP seeds, SIM
  Ki/OPc, staff e-mail and TOTP seeds, and whatever is added later);
* ``replacement_request.activation_code_enc`` (a Fernet token made by the
  services, not by the column type);
* ``job.payload["sealed"]`` (recipient, names and every value of a mail or
  SMS job, see ``notify.message_payload``) and ``job.payload["secret_context"]``
  (a reissue's old MatchingID; one-time codes and "not me" links of jobs
  queued before payloads were sealed).

``replacement_request.matching_id`` is an EncryptedText column: found above.

A value already readable with the first key alone is left as it is, so the
command is resumable: it works in batches of rows, one transaction each, and a
second run after an interruption only does what is left. Values written before
a column was encrypted (clear text) are encrypted. Raw values are read and
written with the column type bypassed, so nothing is decrypted into a log or
an error. A value that no configured key opens stops the run with
:class:`~resim.adapters.crypto.SecretUnreadable` naming the table and column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from resim.adapters.crypto import SecretBox, SecretUnreadable
from resim.adapters.db import orm
from resim.adapters.db.types import EncryptedText
from resim.services.context import ServiceContext

FERNET_PREFIX = "gAAAAA"
BATCH = 500


@dataclass
class RotationReport:
    scanned: int = 0
    rotated: int = 0
    encrypted_clear: int = 0
    current: int = 0
    by_column: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.scanned} values scanned: {self.rotated} re-encrypted, "
            f"{self.encrypted_clear} clear values encrypted, {self.current} already current"
        )


@dataclass(frozen=True)
class Target:
    table: sa.Table
    column: sa.Column[Any]
    json_key: str | None = None  # the value is payload[json_key] of a JSON column

    @property
    def name(self) -> str:
        suffix = f"[{self.json_key}]" if self.json_key else ""
        return f"{self.table.name}.{self.column.name}{suffix}"


def targets() -> list[Target]:
    """Every place a secret is stored encrypted."""
    found = [
        Target(table, col)
        for table in orm.metadata.sorted_tables
        for col in table.columns
        if isinstance(col.type, EncryptedText)
    ]
    found.append(Target(orm.replacement_request, orm.replacement_request.c.activation_code_enc))
    found.append(Target(orm.job, orm.job.c.payload, json_key="sealed"))
    found.append(Target(orm.job, orm.job.c.payload, json_key="secret_context"))
    return found


def _new_value(box: SecretBox, raw: str, report: RotationReport) -> str | None:
    report.scanned += 1
    if not raw.startswith(FERNET_PREFIX):
        report.encrypted_clear += 1
        return box.encrypt(raw)
    if box.is_current(raw):
        report.current += 1
        return None
    report.rotated += 1
    return box.rotate(raw)


def _batches(ctx: ServiceContext, target: Target) -> Iterator[list[Any]]:
    table = target.table
    pk = list(table.primary_key.columns)
    raw = sa.type_coerce(target.column, sa.JSON if target.json_key else sa.Text).label("raw")
    last: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*pk, raw).where(target.column.is_not(None))
        if last is not None:
            query = query.where(sa.tuple_(*pk) > sa.tuple_(*last))
        with ctx.uow() as uow:
            rows = uow.session.execute(query.order_by(*pk).limit(BATCH)).all()
        if not rows:
            return
        yield list(rows)
        last = tuple(rows[-1][: len(pk)])


def rotate_all(
    ctx: ServiceContext, *, progress: Callable[[str], None] = lambda _line: None
) -> RotationReport:
    """Re-encrypt everything under ``ctx.secrets``' first key; see the module docstring."""
    box = ctx.secrets
    report = RotationReport()
    for target in targets():
        table = target.table
        pk = list(table.primary_key.columns)
        done = 0
        for rows in _batches(ctx, target):
            updates: list[dict[str, Any]] = []
            for row in rows:
                value = row.raw
                try:
                    if target.json_key is not None:
                        value = _rotate_json(box, value, target.json_key, report)
                    else:
                        value = _new_value(box, str(value), report)
                except SecretUnreadable:
                    raise SecretUnreadable(
                        f"{target.name}: a stored value opens with none of the configured keys "
                        "(keep the old key in RESIM_SECRET_KEYS until the rotation is done)"
                    ) from None
                if value is not None:
                    keys = {f"k_{c.name}": row[i] for i, c in enumerate(pk)}
                    updates.append({**keys, "v": value})
            if updates:
                stmt = (
                    sa.update(table)
                    .where(*(c == sa.bindparam(f"k_{c.name}") for c in pk))
                    .values(
                        {
                            target.column.name: sa.bindparam(
                                "v", type_=sa.JSON if target.json_key else sa.Text
                            )
                        }
                    )
                )
                with ctx.uow() as uow:
                    uow.session.execute(stmt, updates)
                    uow.commit()
            done += len(rows)
            report.by_column[target.name] = report.by_column.get(target.name, 0) + len(updates)
            progress(f"{target.name}: {done} rows checked, {len(updates)} rewritten in this batch")
    return report


def _rotate_json(
    box: SecretBox, payload: Any, key: str, report: RotationReport
) -> dict[str, Any] | None:
    if isinstance(payload, str):  # some drivers hand JSON back as text
        payload = json.loads(payload)
    if not isinstance(payload, dict) or payload.get(key) is None:
        return None
    value = payload[key]
    if not isinstance(value, str):  # a context stored in clear by old code
        value = json.dumps(value)
    new = _new_value(box, value, report)
    return None if new is None else {**payload, key: new}
