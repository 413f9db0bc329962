"""The audit log as an auditor uses it (SEC-09): verify, export, prune.

* :func:`verify_chain` walks the whole chain from the prune anchor to the head
  in seq order, a batch per short transaction (constant memory, and on SQLite
  writers are held up for one batch at most), and names the first broken link.
* :func:`export_segment` writes a contiguous run of rows (JSON lines or CSV)
  with ``seq``, ``prev_hash`` and ``hash`` so that the segment can be
  re-verified without the database (:func:`verify_export`; the algorithm is in
  ``resim.domain.audit_chain``).
* :func:`prune` removes rows older than the retention period (at least three
  years) and records an anchor so the rest stays verifiable.

Audit details never hold secrets (``UnitOfWork.audit``), so exports do not.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from resim.domain.audit_chain import GENESIS_HASH, Break, ChainWalk, iso_utc
from resim.errors import InvalidInput, Refused
from resim.services.context import ServiceContext
from resim.services.stores.audit import AUDIT_COLUMNS

MIN_RETENTION_DAYS = 1095  # three years (SEC-09)
BATCH = 1000
FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    anchor_seq: int
    last_seq: int
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def summary(self) -> str:
        if self.broken is not None:
            return f"BROKEN at seq {self.broken.seq}: {self.broken.message}"
        start = f" (pruned through seq {self.anchor_seq})" if self.anchor_seq else ""
        return f"ok: {self.rows} rows verified, seq {self.anchor_seq + 1}..{self.last_seq}{start}"


def _rows(
    ctx: ServiceContext,
    *,
    after_seq: int,
    upto_seq: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows with ``after_seq < seq [<= upto_seq]`` in seq order, one batch per transaction."""
    last = after_seq
    while True:
        with ctx.uow() as uow:
            chunk = uow.audit_log.rows(after_seq=last, upto_seq=upto_seq, limit=BATCH)
        if not chunk:
            return
        yield from chunk
        last = chunk[-1]["seq"]


def verify_chain(ctx: ServiceContext) -> VerifyResult:
    """Check every link from the prune anchor to the head; the first break, if any.

    The head is read first; rows appended while the walk runs lie beyond it
    and are left for the next run.
    """
    with ctx.uow() as uow:
        head = uow.audit_log.head()
    anchor_seq, anchor_hash = (head.anchor_seq, head.anchor_hash) if head else (0, GENESIS_HASH)
    walk = ChainWalk(start_seq=anchor_seq, start_hash=anchor_hash)
    for row in _rows(ctx, after_seq=anchor_seq, upto_seq=head.last_seq if head else None):
        if walk.feed(row) is not None:
            break
    if head is not None:
        walk.finish(head.last_seq, head.last_hash)
    elif walk.broken is None and walk.rows:
        walk.broken = Break(None, None, "head", "audit rows exist but the chain head is missing")
    if walk.broken is None and head is not None:
        walk.broken = _rows_beyond_head(ctx)
    return VerifyResult(walk.rows, anchor_seq, walk.last_seq, walk.broken)


def _rows_beyond_head(ctx: ServiceContext) -> Break | None:
    # An append moves the head in the same transaction, so in one snapshot
    # the newest row is always the head's; a row past it was written outside.
    with ctx.uow() as uow:
        head = uow.audit_log.head()
        newest = uow.audit_log.newest()
    if head is None or newest is None or newest[0] <= head.last_seq:
        return None
    seq, row_id = newest
    return Break(
        seq,
        row_id,
        "unchained",
        f"seq {seq} (id {row_id}) lies after the chain head (seq {head.last_seq}): "
        "written outside the chain",
    )


# ---------------------------------------------------------------- export


def parse_when(value: str, *, end: bool = False) -> dt.datetime:
    """An ISO date or datetime as UTC. A plain date as ``end`` means the end of that day."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end else start
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not a date (YYYY-MM-DD) or ISO datetime", code="INVALID_DATE"
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _window(start: dt.datetime, end: dt.datetime) -> None:
    if end <= start:
        raise InvalidInput("--to must be after --from", code="INVALID_DATE")


@dataclass(frozen=True)
class Segment:
    first_seq: int | None
    last_seq: int | None
    prev_hash: str | None  # hash of the row before the segment
    rows: int


def segment_bounds(ctx: ServiceContext, start: dt.datetime, end: dt.datetime) -> Segment:
    """The contiguous seq range: first event at/after ``start`` to the last before ``end``."""
    _window(start, end)
    with ctx.uow() as uow:
        first, last = uow.audit_log.seq_bounds(start, end)
        if first is None or last is None or last < first:
            return Segment(None, None, None, 0)
        prev = uow.audit_log.hash_of(first - 1)
        if prev is None:
            head = uow.audit_log.head()
            if head is not None and head.anchor_seq == first - 1:
                prev = head.anchor_hash
            elif first == 1:
                prev = GENESIS_HASH
    return Segment(first, last, prev, last - first + 1)


def _export_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "at": iso_utc(row["at"]), "detail": row["detail"] or {}}


def export_segment(
    ctx: ServiceContext, out: TextIO, *, start: dt.datetime, end: dt.datetime, fmt: str = "jsonl"
) -> Segment:
    """Stream the rows of :func:`segment_bounds` to ``out`` as JSON lines or CSV.

    Every row carries ``prev_hash`` and ``hash``; the returned segment names
    the hash of the row before it, which the auditor checks against an
    earlier export or a head they recorded.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)}", code="INVALID_FORMAT")
    seg = segment_bounds(ctx, start, end)
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    if seg.first_seq is None or seg.last_seq is None:
        return seg
    for row in _rows(ctx, after_seq=seg.first_seq - 1, upto_seq=seg.last_seq):
        data = _export_row(row)
        if writer is not None:
            writer.writerow({**data, "detail": json.dumps(data["detail"], sort_keys=True)})
        else:
            out.write(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n")
    return seg


def _read_export(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        first = fh.read(1)
        fh.seek(0)
        if first == "{":
            for line in fh:
                if line.strip():
                    yield json.loads(line)
            return
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = dict(raw)
            row["seq"] = int(row["seq"])
            row["detail"] = json.loads(row["detail"] or "{}")
            row["source"] = row["source"] or None
            yield row


def verify_export(path: Path, *, prev_hash: str | None = None) -> tuple[int, Break | None]:
    """Re-verify an exported segment without the database.

    ``prev_hash`` is the hash of the row before the segment, from a source the
    auditor trusts; without it the first row's own ``prev_hash`` is taken (the
    segment is then checked only internally).
    """
    walk: ChainWalk | None = None
    for row in _read_export(path):
        if walk is None:
            start = prev_hash if prev_hash is not None else str(row.get("prev_hash"))
            walk = ChainWalk(start_seq=int(row["seq"]) - 1, start_hash=start)
        if walk.feed(row) is not None:
            break
    if walk is None:
        return 0, None
    return walk.rows, walk.broken


# ---------------------------------------------------------------- retention


def prune(
    ctx: ServiceContext, *, before: dt.datetime, retention_days: int
) -> tuple[int, int | None]:
    """Delete the audit rows older than ``before``; return (rows deleted, anchor seq).

    Refuses a ``before`` newer than now minus the retention period, a
    retention under three years, and a chain that does not verify (pruning
    would destroy the evidence). Only a prefix of the chain is removed: rows
    up to the first one at or after ``before``. The last removed row becomes
    the anchor that :func:`verify_chain` starts from.
    """
    if retention_days < MIN_RETENTION_DAYS:
        raise Refused(
            f"audit retention must be at least {MIN_RETENTION_DAYS} days",
            code="RETENTION_TOO_SHORT",
        )
    limit = ctx.now() - dt.timedelta(days=retention_days)
    if before > limit:
        raise Refused(
            f"audit rows are kept {retention_days} days: --before must be on or before "
            f"{limit.date().isoformat()}",
            code="RETENTION_NOT_REACHED",
        )
    checked = verify_chain(ctx)
    if not checked.ok:
        raise Refused(
            f"the audit chain does not verify ({checked.summary()}); nothing pruned",
            code="AUDIT_CHAIN_BROKEN",
        )
    with ctx.uow() as uow:
        last = uow.audit_log.last_link_before(before)
        if last is None:
            return 0, None
        deleted = uow.audit_log.prune_through(last)
        uow.audit(
            at=ctx.now(),
            actor="cli",
            action="audit.pruned",
            object_type="audit",
            object_id=str(last.seq),
            detail={"before": before.isoformat(), "rows": deleted, "anchor_seq": last.seq},
            source="cli",
        )
        uow.commit()
    return deleted, int(last.seq)
