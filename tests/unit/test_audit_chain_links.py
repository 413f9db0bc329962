"""The audit hash chain's pure functions: canonical form, links and the first break."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from resim.domain.audit_chain import GENESIS_HASH, canonical, link_hash, verify_rows

AT = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def row(seq: int, **kw: Any) -> dict[str, Any]:
    base = {
        "seq": seq,
        "id": f"e{seq}",
        "at": AT,
        "actor": "bss",
        "action": "request.opened",
        "object_type": "request",
        "object_id": "r1",
        "detail": {"b": 1, "a": "ø"},
        "source": None,
    }
    return base | kw


def chain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        r = row(seq)
        r["prev_hash"], r["hash"] = prev, link_hash(prev, r)
        prev = r["hash"]
        rows.append(r)
    return rows


def test_the_canonical_form_is_sorted_compact_utc_json() -> None:
    assert canonical(row(1)) == (
        '{"action":"request.opened","actor":"bss","at":"2026-03-01T09:00:00.000000+00:00",'
        '"detail":{"a":"ø","b":1},"id":"e1","object_id":"r1","object_type":"request",'
        '"seq":1,"source":null}'
    )
    expected = hashlib.sha256((GENESIS_HASH + canonical(row(1))).encode()).hexdigest()
    assert link_hash(GENESIS_HASH, row(1)) == expected


def test_an_intact_chain_verifies_with_its_head() -> None:
    rows = chain(4)
    assert verify_rows(rows, head_seq=4, head_hash=rows[-1]["hash"]) is None


def test_each_kind_of_tampering_is_named() -> None:
    rows = chain(4)
    edited = [*rows[:2], rows[2] | {"actor": "mallory"}, rows[3]]
    broken = verify_rows(edited)
    assert broken is not None and (broken.seq, broken.kind) == (3, "edited")
    broken = verify_rows([rows[0], rows[2], rows[3]])
    assert broken is not None and (broken.seq, broken.kind) == (3, "deleted")
    swapped = [rows[0], rows[2] | {"seq": 2}, rows[1] | {"seq": 3}, rows[3]]
    broken = verify_rows(swapped)
    assert broken is not None and (broken.seq, broken.kind) == (2, "reordered")
    broken = verify_rows(rows[:3], head_seq=4, head_hash=rows[3]["hash"])
    assert broken is not None and broken.kind == "deleted"
    broken = verify_rows(rows, head_seq=4, head_hash="f" * 64)
    assert broken is not None and broken.kind == "head"
    broken = verify_rows([*rows, row(5) | {"prev_hash": None, "hash": None}])
    assert broken is not None and (broken.seq, broken.kind) == (5, "unchained")


def test_a_segment_verifies_from_the_hash_before_it() -> None:
    rows = chain(5)
    assert verify_rows(rows[2:], start_seq=2, start_hash=rows[1]["hash"]) is None
    broken = verify_rows(rows[2:], start_seq=2, start_hash=GENESIS_HASH)
    assert broken is not None and broken.seq == 3
