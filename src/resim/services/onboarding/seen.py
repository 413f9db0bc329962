"""The unique keys met so far in one file, kept on disk so that memory stays flat.

Pass 1 must reject the second row with a key an earlier row of the same file
already had. Held in Python sets, those keys took about 110 bytes each: 290 MB
for the ICCIDs and IMSIs of 1.3 million SIMs. Here they live in a private
temporary SQLite database (``sqlite3.connect("")``: an anonymous file deleted
when closed, with a bounded page cache); each batch costs one look-up and one
insert per key name and table.

A key that is a number (``[1-9][0-9]{0,18}`` up to 2**63 - 1, or that with a
leading ``+`` as in E.164) is stored as an integer (``+`` as a minus sign) in an INTEGER
PRIMARY KEY table, three times faster than text; any other key (20-digit
ICCIDs, account ids, composite keys) as text in a table of its own. The
mapping is one-to-one, so two keys are equal exactly when their stored forms
are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

_CHUNK = 10_000  # host parameters per look-up (SQLite allows 32766)
_CACHE_KIB = 16_384
_INT64_MAX = 2**63 - 1  # SQLite's INTEGER

Stored = int | str


def _stored(key: str) -> Stored:
    digits = key[1:] if key[:1] == "+" else key
    if 0 < len(digits) <= 19 and digits.isascii() and digits.isdigit() and digits[0] != "0":
        number = int(digits)
        if number <= _INT64_MAX:  # every 18-digit number, and 19-digit ICCIDs (89...)
            return -number if digits is not key else number
    return key


def _split(keys: set[Stored]) -> tuple[tuple[bool, list[Stored]], tuple[bool, list[Stored]]]:
    numbers: list[Stored] = []
    texts: list[Stored] = []
    for key in keys:
        (numbers if type(key) is int else texts).append(key)
    return (True, numbers), (False, texts)


class SeenKeys:
    """The keys of the rows accepted so far, by key name (``msisdn``, ``iccid``, ...)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        # A rollback journal in memory: a batch stored with ``new=True`` is rolled
        # back when one of its keys was stored before (journal_mode OFF would
        # leave the keys inserted before the conflict behind).
        self._db.execute("PRAGMA journal_mode = MEMORY")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._tables: set[str] = set()

    def first_seen(self, keyed: Sequence[Sequence[tuple[str, str]]]) -> list[str | None]:
        """For each row's (name, key) pairs, in file order: None if every key is new,
        else the name of the first key that an earlier row had (in an earlier
        batch, or earlier in this one). Keys of rows found new are remembered;
        keys of duplicate rows are not (as if the row were not in the file).
        """
        rows = [[(name, _stored(key)) for name, key in keys] for keys in keyed]
        names = {name for keys in rows for name, _ in keys}
        wanted: dict[str, set[Stored]] = {name: set() for name in names}
        given = dict.fromkeys(names, 0)
        for keys in rows:
            for name, key in keys:
                wanted[name].add(key)
                given[name] += 1
        if all(len(wanted[n]) == given[n] for n in names) and self._remember(wanted, new=True):
            return [None] * len(rows)  # the usual case: no key repeats
        before = {name: self._present(name, wanted[name]) for name in names}
        fresh: dict[str, set[Stored]] = {name: set() for name in names}
        out: list[str | None] = []
        for keys in rows:
            duplicate = next(
                (name for name, key in keys if key in before[name] or key in fresh[name]), None
            )
            out.append(duplicate)
            if duplicate is None:
                for name, key in keys:
                    fresh[name].add(key)
        self._remember(fresh)
        return out

    def close(self) -> None:
        self._db.close()

    def _table(self, name: str, numeric: bool) -> str:
        table = f"seen_{name}_{'n' if numeric else 't'}"
        if table not in self._tables:
            if not name.isidentifier():
                raise ValueError(f"not a key name: {name!r}")
            column = "k INTEGER PRIMARY KEY" if numeric else "k TEXT PRIMARY KEY"
            rowid = "" if numeric else " WITHOUT ROWID"
            self._db.execute(f"CREATE TABLE {table} ({column}){rowid}")
            self._tables.add(table)
        return table

    def _present(self, name: str, keys: set[Stored]) -> set[Stored]:
        found: set[Stored] = set()
        for numeric, listed in _split(keys):
            if not listed:
                continue
            table = self._table(name, numeric)
            for at in range(0, len(listed), _CHUNK):
                part = listed[at : at + _CHUNK]
                marks = ", ".join(["?"] * len(part))
                sql = f"SELECT k FROM {table} WHERE k IN ({marks})"  # noqa: S608 (checked name)
                found.update(row[0] for row in self._db.execute(sql, part))
        return found

    def _remember(self, keys: dict[str, set[Stored]], *, new: bool = False) -> bool:
        """Store ``keys``. With ``new``: only if none of them is stored yet, else
        store nothing and return False. The tables' primary keys check that as
        the rows go in, so the usual batch (no key seen before) needs no look-up."""
        parts = []
        for name in sorted(keys):  # the same order in every run
            for numeric, listed in _split(keys[name]):
                if listed:
                    listed.sort()  # in key order: B-tree appends
                    parts.append((self._table(name, numeric), listed))  # (created outside BEGIN)
        # One transaction per batch: in autocommit mode every row would be its own.
        self._db.execute("BEGIN")
        try:
            for table, listed in parts:
                sql = f"INSERT INTO {table} (k) VALUES (?)"  # noqa: S608 (checked name)
                self._db.executemany(sql, ((k,) for k in listed))
        except sqlite3.IntegrityError:
            self._db.execute("ROLLBACK")
            if not new:
                raise
            return False
        self._db.execute("COMMIT")
        return True
