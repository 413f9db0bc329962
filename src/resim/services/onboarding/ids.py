"""Ids for imported rows that sort by the time they were made (UUIDv7, as hex).

Bulk imports insert hundreds of thousands of rows whose ids are primary keys
and foreign keys (``line.id``, ``sim.line_id``, ``sim.bound_line_id``,
``sim_change.id``). Random UUID4s land on random pages of each of those
B-tree indexes, so once the indexes outgrow the database's cache every insert
reads and rewrites a page somewhere in the middle. These ids (RFC 9562
UUIDv7: 48 bits of Unix milliseconds, version 7, 74 random bits) ascend: a
batch's ids are sorted, and the next batch's start at a later millisecond, so
each index grows at its right edge. Same text format as ``new_ids`` (32
lower-case hex digits); 74 random bits keep them unguessable.
"""

from __future__ import annotations

import os
import time

_RAND_BITS = 74
_RAND_MASK = (1 << _RAND_BITS) - 1


def ordered_ids(count: int, *, now_ms: int | None = None) -> list[str]:
    """``count`` ascending UUIDv7 ids in hex; each call's ids are above the last call's
    if at least a millisecond passed in between (a batch write takes longer)."""
    ms = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & ((1 << 48) - 1)
    raw = os.urandom(10 * count)
    rands = sorted(
        int.from_bytes(raw[i : i + 10], "big") & _RAND_MASK for i in range(0, 10 * count, 10)
    )
    high = ms << 80 | 0x7 << 76
    out = []
    for r in rands:
        # rand_a (12 bits) | variant 0b10 | rand_b (62 bits)
        value = high | (r >> 62) << 64 | 0b10 << 62 | (r & ((1 << 62) - 1))
        out.append(f"{value:032x}")
    return out
