"""Every stored secret, as key rotation reads and rewrites it (``uow.sealed``).

Behind :mod:`resim.services.audit.key_rotation`. A *place* is one column (or one key
of a JSON column) that holds values encrypted under ``RESIM_SECRET_KEYS``;
its values are read in primary-key order, a batch at a time, as the database
stores them (ciphertext, or clear text written before encryption). SQL only
(:mod:`resim.adapters.db.stores.sealed`): the places are the schema's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Place(Protocol):
    @property
    def name(self) -> str:
        """``table.column`` or ``table.column[json key]``."""
        ...

    @property
    def json_key(self) -> str | None:
        """The key of the JSON column's object that holds the value (None: the
        column's value itself)."""
        ...


class SealedValueStore(Protocol):
    def places(self) -> Sequence[Place]: ...

    def batch(
        self, place: Place, *, after: tuple[Any, ...] | None, limit: int
    ) -> Sequence[tuple[tuple[Any, ...], Any]]:
        """Up to ``limit`` (primary key, stored value) of rows whose value is not
        NULL, with a key above ``after``, in key order. A JSON place's value is
        the whole JSON document."""
        ...

    def rewrite(self, place: Place, values: Sequence[tuple[tuple[Any, ...], Any]]) -> None:
        """Store new values by primary key (a JSON place: the whole document)."""
        ...
