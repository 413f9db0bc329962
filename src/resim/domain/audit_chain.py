"""The audit hash chain (SEC-09), as pure functions.

Every audit row carries ``prev_hash`` (the hash of the row before it in the
chain, or :data:`GENESIS_HASH` for the first) and ``hash``::

    hash = SHA-256( prev_hash  +  canonical(row) )      hex, lower case

where ``prev_hash`` is its 64 hex characters and ``canonical(row)`` is the
UTF-8 JSON of exactly these fields, keys sorted, no whitespace
(``separators=(",", ":")``), non-ASCII kept as is (``ensure_ascii=False``)::

    {"action": ..., "actor": ..., "at": "2026-03-01T09:00:00.000000+00:00",
     "detail": {...}, "id": ..., "object_id": ..., "object_type": ...,
     "seq": 17, "source": null}

``at`` is the event time in UTC, ISO 8601 with microseconds and ``+00:00``.
``seq`` is dense: the chain's n-th row has ``seq`` n, so a missing row shows as
a gap even where its neighbours were re-hashed.

To re-verify an exported segment an auditor needs only this docstring, the
rows (they carry ``seq``, ``prev_hash`` and ``hash``) and the ``hash`` of the
row just before the segment (for a segment starting at seq 1: 64 zeros)::

    prev = <hash of row seq-1>
    for row in segment (in seq order):
        assert row.prev_hash == prev
        assert sha256((prev + canonical(row)).encode()).hexdigest() == row.hash
        prev = row.hash

:func:`verify_rows` is that loop, with precise reasons.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "seq",
    "id",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "detail",
    "source",
)


def iso_utc(at: dt.datetime) -> str:
    """``at`` as the chain writes it: UTC, microseconds, ``+00:00``. Naive is refused."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(row: Mapping[str, Any]) -> str:
    """The canonical JSON of an audit row's content (see the module docstring)."""
    at = row["at"]
    content = {
        "seq": int(row["seq"]),
        "id": row["id"],
        "at": iso_utc(at) if isinstance(at, dt.datetime) else str(at),
        "actor": row["actor"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "detail": row.get("detail") or {},
        "source": row.get("source"),
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The ``hash`` of ``row`` when it follows a row whose hash is ``prev_hash``."""
    return hashlib.sha256((prev_hash + canonical(row)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first broken link: which row, and what is wrong with it."""

    seq: int | None
    id: str | None
    kind: str  # edited | deleted | reordered | unchained | head
    message: str


@dataclass
class ChainWalk:
    """A streaming verifier: feed rows in ``seq`` order, then call :meth:`finish`.

    Holds only the previous row's seq and hash, so memory stays constant
    however long the chain. ``start_seq``/``start_hash`` are where the walk
    starts: (0, GENESIS_HASH) for a whole chain, or a prune anchor / the row
    before an exported segment.
    """

    start_seq: int = 0
    start_hash: str = GENESIS_HASH
    rows: int = 0
    broken: Break | None = None

    def __post_init__(self) -> None:
        self.last_seq = self.start_seq
        self.last_hash = self.start_hash

    def feed(self, row: Mapping[str, Any]) -> Break | None:
        """Check one row; returns (and keeps) the first break found."""
        if self.broken is not None:
            return self.broken
        self.broken = self._check(row)
        if self.broken is None:
            self.rows += 1
            self.last_seq = int(row["seq"])
            self.last_hash = str(row["hash"])
        return self.broken

    def _check(self, row: Mapping[str, Any]) -> Break | None:
        seq, rid = int(row["seq"]), str(row["id"])
        stored, prev = row.get("hash"), row.get("prev_hash")
        where = f"seq {seq} (id {rid})"
        if stored is None or prev is None:
            return Break(seq, rid, "unchained", f"{where} has no hash: written outside the chain")
        expected_seq = self.last_seq + 1
        if seq != expected_seq:
            if seq > expected_seq:
                missing = (
                    f"seq {expected_seq}"
                    if seq == expected_seq + 1
                    else f"seq {expected_seq}..{seq - 1}"
                )
                return Break(seq, rid, "deleted", f"{missing} missing before {where}")
            return Break(seq, rid, "reordered", f"{where} out of order after seq {self.last_seq}")
        if prev != self.last_hash:
            return Break(
                seq,
                rid,
                "reordered",
                f"{where}: prev_hash does not match the hash of seq {self.last_seq} "
                "(a row was removed, reinserted or moved)",
            )
        if link_hash(prev, row) != stored:
            return Break(seq, rid, "edited", f"{where}: content does not match its hash (edited)")
        return None

    def finish(self, head_seq: int | None, head_hash: str | None) -> Break | None:
        """Compare the end of the walk with the recorded chain head (if any)."""
        if self.broken is not None or head_seq is None:
            return self.broken
        if head_seq != self.last_seq or head_hash != self.last_hash:
            if head_seq > self.last_seq:
                msg = (
                    f"the chain head records seq {head_seq} but the last row is seq "
                    f"{self.last_seq}: seq {self.last_seq + 1}..{head_seq} deleted"
                )
                self.broken = Break(self.last_seq + 1, None, "deleted", msg)
            else:
                msg = (
                    f"the chain head (seq {head_seq}) does not match the last row "
                    f"(seq {self.last_seq}, hash {self.last_hash[:12]}...)"
                )
                self.broken = Break(self.last_seq, None, "head", msg)
        return self.broken


def verify_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
    head_seq: int | None = None,
    head_hash: str | None = None,
) -> Break | None:
    """The first break in ``rows`` (in seq order), or None when every link holds."""
    walk = ChainWalk(start_seq=start_seq, start_hash=start_hash)
    for row in rows:
        if walk.feed(row) is not None:
            return walk.broken
    return walk.finish(head_seq, head_hash)
