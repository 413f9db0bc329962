"""Column types shared by every resim table (the core network's included)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from resim.adapters.crypto import bound_secrets

# Every Fernet token starts with its version byte 0x80 and a timestamp, which
# url-safe base64 renders as "gAAAAA". Rows written before a column became
# encrypted hold clear text; they are read as they are and re-encrypted by
# ``resim keys rotate``.
_FERNET_PREFIX = "gAAAAA"


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both back ends (SQLite keeps naive UTC).

    A naive datetime is refused on the way in: every time in resim comes from a
    Clock and carries its zone.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class EncryptedText(TypeDecorator[str]):
    """A string encrypted at rest (SEC-10, SEC-11) with the unit of work's keys.

    Each write makes a new random token, so the column cannot be searched or
    indexed; look rows up by another column. ``resim keys rotate`` rewrites
    every such column under the first key.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return bound_secrets().encrypt(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        text = str(value)
        if not text.startswith(_FERNET_PREFIX):
            return text  # written before encryption; `resim keys rotate` fixes it
        return bound_secrets().decrypt(text)
