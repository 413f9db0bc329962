"""Appending to and reading the hash-chained audit log (SEC-09) in the database.

The chain's order is the order in which transactions commit, and ``seq`` is
that order, dense from 1: :func:`append_chained` runs at the very end of a
transaction (``UnitOfWork.commit``), takes the lock on the chain head row
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite ``BEGIN IMMEDIATE``
already serialises writers), numbers the new events ``last_seq + 1 ...``,
hashes each one after the one before it and moves the head. Because the
numbers are given under the head lock rather than drawn from a sequence, two
concurrent transactions can never interleave their rows, and a rolled-back
transaction leaves no gap. The head lock is the last lock the transaction
takes and it commits straight after, so the lock is held for milliseconds and
cannot close a deadlock cycle with row locks taken earlier.

The table is append-only in the database too (triggers from migration 0002);
nothing here updates or deletes an audit row except :func:`prune_through`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resim.adapters.db import orm
from resim.domain.audit_chain import GENESIS_HASH, link_hash
from resim.domain.model import AuditEvent
from resim.services.stores.audit import AUDIT_COLUMNS

HEAD_ID = 1


@dataclass(frozen=True)
class ChainHead:
    last_seq: int
    last_hash: str
    anchor_seq: int
    anchor_hash: str


def _normalised_detail(detail: dict[str, Any]) -> dict[str, Any]:
    # What the JSON column gives back on read, so the hash made now matches the
    # hash recomputed later (tuples become lists, non-string keys strings).
    value: dict[str, Any] = json.loads(json.dumps(detail or {}, ensure_ascii=False))
    return value


_h = orm.audit_chain_head
# Built once (issue 16): every audited transaction runs these two.
_LOCK_HEAD = sa.select(_h).where(_h.c.id == HEAD_ID).with_for_update()
_MOVE_HEAD = (
    sa.update(_h)
    .where(_h.c.id == HEAD_ID)
    .values(last_seq=sa.bindparam("seq"), last_hash=sa.bindparam("hash"))
)
_INSERT_EVENTS = sa.insert(orm.audit_event)


# The columns append_chained writes, as its rows name them (bound as e_<name>:
# an UPDATE's statement reserves its table's column names, ``id`` among them).
_EVENT_COLUMNS = (
    "seq", "id", "at", "actor", "action", "object_type", "object_id", "detail", "source",
    "prev_hash", "hash",
)  # fmt: skip


def _append_and_move() -> sa.Update:
    """PostgreSQL: one event inserted and the head moved to it in one statement
    (a data-modifying CTE), instead of an INSERT and an UPDATE (issue 16)."""
    t = orm.audit_event
    appended = (
        sa.insert(t)
        .values({n: sa.bindparam(f"e_{n}", type_=t.c[n].type) for n in _EVENT_COLUMNS})
        .returning(t.c.seq, t.c.hash)
        .cte("appended")
    )
    return (
        sa.update(_h)
        .where(_h.c.id == HEAD_ID)
        .values(
            last_seq=sa.select(appended.c.seq).scalar_subquery(),
            last_hash=sa.select(appended.c.hash).scalar_subquery(),
        )
        .add_cte(appended)
    )


_APPEND_AND_MOVE = _append_and_move()


def lock_head(session: Session) -> ChainHead:
    """The chain head, locked until the transaction ends (created if missing)."""
    row = session.execute(_LOCK_HEAD).first()  # autoflushes what is pending first
    if row is None:  # a database made without migration 0002's seed row
        return _seed_head(session)
    return ChainHead(row.last_seq, row.last_hash, row.anchor_seq, row.anchor_hash)


def _seed_head(session: Session) -> ChainHead:
    session.execute(
        sa.insert(_h).values(
            id=HEAD_ID,
            last_seq=0,
            last_hash=GENESIS_HASH,
            anchor_seq=0,
            anchor_hash=GENESIS_HASH,
        )
    )
    return ChainHead(0, GENESIS_HASH, 0, GENESIS_HASH)


def read_head(conn: sa.Connection | Session) -> ChainHead | None:
    h = orm.audit_chain_head
    row = conn.execute(sa.select(h).where(h.c.id == HEAD_ID)).first()
    if row is None:
        return None
    return ChainHead(row.last_seq, row.last_hash, row.anchor_seq, row.anchor_hash)


def append_chained(session: Session, events: Sequence[AuditEvent]) -> None:
    """Insert ``events`` at the end of the chain, in the given order.

    Call last in the transaction, after a flush, right before commit: it takes
    the head lock.
    Sets ``prev_hash`` and ``hash`` on the objects too.
    """
    if not events:
        return
    # Core statements on the session's connection: the same transaction, without
    # the ORM's per-execution work (the caller has flushed; no row here is an entity).
    conn = session.connection()
    found = conn.execute(_LOCK_HEAD).first()
    head = (
        _seed_head(session)
        if found is None
        else ChainHead(found.last_seq, found.last_hash, found.anchor_seq, found.anchor_hash)
    )
    seq, prev = head.last_seq, head.last_hash
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        row = {
            "seq": seq,
            "id": event.id,
            "at": event.at,
            "actor": event.actor,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "detail": _normalised_detail(event.detail),
            "source": event.source,
        }
        digest = link_hash(prev, row)
        event.prev_hash, event.hash = prev, digest
        rows.append({**row, "prev_hash": prev, "hash": digest})
        prev = digest
    if conn.dialect.name == "postgresql":
        *before, last = rows
        if before:
            conn.execute(_INSERT_EVENTS, before)
        conn.execute(_APPEND_AND_MOVE, {f"e_{n}": v for n, v in last.items()})
        return
    conn.execute(_INSERT_EVENTS, rows)
    conn.execute(_MOVE_HEAD, {"seq": seq, "hash": prev})


def iter_rows(
    conn: sa.Connection,
    *,
    after_seq: int = 0,
    where: sa.ColumnElement[bool] | None = None,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Audit rows in seq order, fetched in keyset batches (constant memory)."""
    t = orm.audit_event
    last = after_seq
    while True:
        query = sa.select(*(t.c[name] for name in AUDIT_COLUMNS)).where(t.c.seq > last)
        if where is not None:
            query = query.where(where)
        chunk = conn.execute(query.order_by(t.c.seq).limit(batch)).mappings().all()
        if not chunk:
            return
        for row in chunk:
            yield dict(row)
        last = chunk[-1]["seq"]


def prune_through(session: Session, *, seq: int, row_hash: str, at: Any) -> int:
    """Move the anchor to row ``seq`` and delete it and every row before it.

    The head is locked first (as every appender does). The append-only trigger
    lets a DELETE through only for rows at or below the anchor, so the anchor
    must move before the delete, in the same transaction.
    """
    lock_head(session)
    h, t = orm.audit_chain_head, orm.audit_event
    session.execute(
        sa.update(h)
        .where(h.c.id == HEAD_ID)
        .values(anchor_seq=seq, anchor_hash=row_hash, anchor_at=at)
    )
    result = session.execute(sa.delete(t).where(t.c.seq <= seq))
    return int(result.rowcount)  # type: ignore[attr-defined]
