"""Time-ordered ids of imported rows (services/onboarding/ids.py)."""

from __future__ import annotations

import re
import uuid

from resim.services.onboarding.ids import ordered_ids


def test_ids_are_uuid7_hex_ascending_within_a_call() -> None:
    ids = ordered_ids(1000, now_ms=1_700_000_000_000)
    assert ids == sorted(ids) and len(set(ids)) == 1000
    for value in ids[:20]:
        assert re.fullmatch(r"[0-9a-f]{32}", value)
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert int(value[:12], 16) == 1_700_000_000_000


def test_a_later_millisecond_sorts_after_every_id_of_an_earlier_one() -> None:
    first = ordered_ids(500, now_ms=1_700_000_000_000)
    second = ordered_ids(500, now_ms=1_700_000_000_001)
    assert max(first) < min(second)


def test_zero_ids() -> None:
    assert ordered_ids(0) == []
