"""adapters/db/bulk.py stores what SQLAlchemy would; new_ids() makes UUID4 hex ids."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy.dialects import sqlite

from resim.adapters.db.bulk import _sqlite_utc_text, _sqlite_utc_texts
from resim.adapters.db.types import UtcDateTime
from resim.domain.identifiers import luhn_check_digit, luhn_valid
from resim.services.unit_of_work import new_ids

CET = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2020, 8, 10, 12, 47, 32, tzinfo=CET),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(5, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 22, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_sqlite_time_text_is_what_utcdatetime_stores(value: dt.datetime) -> None:
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert _sqlite_utc_text(value) == process(value)


def test_many_sqlite_time_texts_are_what_utcdatetime_stores() -> None:
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    values = [
        dt.datetime(2020, 8, 10, 12, 47, 32, tzinfo=CET),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(5, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        None,
        dt.datetime(2020, 8, 10, 12, 47, 32, tzinfo=CET),
    ]
    assert _sqlite_utc_texts(values) == [None if v is None else process(v) for v in values]


def test_sqlite_time_text_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        _sqlite_utc_text(dt.datetime(2024, 1, 1))


def test_new_ids_are_distinct_uuid4_hex() -> None:
    ids = new_ids(2000)
    assert len(set(ids)) == 2000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == value


def test_luhn_valid_agrees_with_the_check_digit_function() -> None:
    import random

    rng = random.Random(7)
    for _ in range(3000):
        payload = "89" + "".join(rng.choice("0123456789") for _ in range(rng.randint(15, 17)))
        good = payload + luhn_check_digit(payload)
        assert luhn_valid(good)
        wrong = payload + str((int(good[-1]) + rng.randint(1, 9)) % 10)
        assert not luhn_valid(wrong)
    assert not luhn_valid("")
    assert not luhn_valid("89x1")
