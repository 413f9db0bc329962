"""The unique keys met so far in one file, kept on disk so that memory stays flat.

Pass 1 must reject the second row with a key an earlier row of the same file
already had. Held in Python sets, those keys took about 110 bytes each: 290 MB
for the ICCIDs and IMSIs of 1.3 million SIMs. Here they live in a private
temporary SQLite database (``sqlite3.connect("")``: an anonymous file deleted
when closed, with a bounded page cache), one table per key name; each batch
costs one look-up and one insert per key name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

_CHUNK = 10_000  # host parameters per look-up (SQLite allows 32766)
_CACHE_KIB = 16_384


class SeenKeys:
    """The keys of the rows accepted so far, by key name (``msisdn``, ``iccid``, ...)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._tables: set[str] = set()

    def first_seen(self, keyed: Sequence[Sequence[tuple[str, str]]]) -> list[str | None]:
        """For each row's (name, key) pairs, in file order: None if every key is new,
        else the name of the first key that an earlier row had (in an earlier
        batch, or earlier in this one). Keys of rows found new are remembered;
        keys of duplicate rows are not (as if the row were not in the file).
        """
        names = {name for keys in keyed for name, _ in keys}
        wanted: dict[str, set[str]] = {name: set() for name in names}
        for keys in keyed:
            for name, key in keys:
                wanted[name].add(key)
        before = {name: self._present(name, wanted[name]) for name in names}
        fresh: dict[str, set[str]] = {name: set() for name in names}
        out: list[str | None] = []
        for keys in keyed:
            duplicate = next(
                (name for name, key in keys if key in before[name] or key in fresh[name]), None
            )
            out.append(duplicate)
            if duplicate is None:
                for name, key in keys:
                    fresh[name].add(key)
        for name, new in fresh.items():
            if new:
                self._db.executemany(
                    f"INSERT INTO {self._table(name)} (k) VALUES (?)",  # noqa: S608 (checked name)
                    ((k,) for k in new),
                )
        return out

    def close(self) -> None:
        self._db.close()

    def _table(self, name: str) -> str:
        table = f"seen_{name}"
        if table not in self._tables:
            if not name.isidentifier():
                raise ValueError(f"not a key name: {name!r}")
            self._db.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY) WITHOUT ROWID")
            self._tables.add(table)
        return table

    def _present(self, name: str, keys: set[str]) -> set[str]:
        table = self._table(name)
        found: set[str] = set()
        listed = list(keys)
        for at in range(0, len(listed), _CHUNK):
            part = listed[at : at + _CHUNK]
            marks = ", ".join(["?"] * len(part))
            sql = f"SELECT k FROM {table} WHERE k IN ({marks})"  # noqa: S608 (checked name)
            found.update(row[0] for row in self._db.execute(sql, part))
        return found
