"""Bulk reads and writes through the driver, inside the caller's transaction.

For the onboarding import: hundreds of thousands of rows per table. SQLAlchemy
Core's executemany runs every value of every row through the compiled
statement (``construct_params``, one bind-processor call per value), which
costs more than the database itself. Here each column's values are converted
once, column-wise, with the bind processor SQLAlchemy would have used for that
column (so what is stored is byte-identical: SQLite's datetime text, JSON,
enum values), and the rows go to the driver in one call:

- SQLite: ``sqlite3`` ``executemany``;
- PostgreSQL: ``COPY ... FROM STDIN`` for inserts, ``COPY`` into a temporary
  table then one ``UPDATE ... FROM`` for updates, one statement per look-up
  (an array of keys, each looked up through the key's index).

PostgreSQL plans: the import's tables grow to millions of rows within one
run, and a table just loaded has no statistics (autovacuum has not analysed
it yet, or is off). For a batch of 20,000 keys the planner then prefers to
read the whole table (a sequential scan hashed against the batch, or
``= ANY`` as a filter of every row): 0.4 to 1 s a statement at a million
rows, growing with the table. Every statement here is written or planned so
that each key is one probe of the key's index, whatever the statistics say:
the cost grows with the batch, not with the table.

Every function runs on ``conn`` (``session.connection()``), so the statements
are part of the caller's transaction and commit or roll back with it.
SQL text is built only from ``Table`` metadata, quoted by the dialect's
identifier preparer; every value is a bound parameter (hence the S608 waivers).
Encrypted columns (``EncryptedText``) must be given already encrypted and
named in ``raw`` (see ``SecretBox.encrypt_many``): their bind processor would
encrypt value by value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa

from resim.adapters.db.types import UtcDateTime

# SQLite's page cache for connections that do bulk writes (KiB, as a negative
# cache_size). The default 2 MB spills dirty pages in the middle of a batch
# once the indexes outgrow it (py-spy at 100,000 lines: sqlite3PcacheFetchStress
# and pwrite64 under every INSERT); 64 MB keeps a million lines' index pages.
_SQLITE_BULK_CACHE_KIB = 65_536
_FEW_VALUES = (sa.Enum, sa.Boolean)
# SQLite's default limit of host parameters is 32766; stay well below.
_SQLITE_IN_CHUNK = 10_000


def _columns_processed(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    raw: Collection[str],
) -> list[tuple[Any, ...]]:
    dialect = conn.dialect
    procs: list[Callable[[Any], Any] | None] = []
    for name in columns:
        col_type = table.c[name].type
        if name in raw:
            procs.append(None)
        elif isinstance(col_type, UtcDateTime) and dialect.name == "sqlite":
            procs.append(_sqlite_utc_text)
        else:
            procs.append(col_type.dialect_impl(dialect).bind_processor(dialect))
    if all(p is None for p in procs):
        return [tuple(r) for r in rows]
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for at, proc in enumerate(procs):
        if proc is _sqlite_utc_text:
            cols[at] = _sqlite_utc_texts(cols[at])
        elif proc is not None and isinstance(table.c[columns[at]].type, _FEW_VALUES):
            few: dict[Any, Any] = {}  # an enum or a flag: a handful of values, each converted once
            cols[at] = [
                None if v is None else few[v] if v in few else few.setdefault(v, proc(v))
                for v in cols[at]
            ]
        elif proc is not None:
            cols[at] = [None if v is None else proc(v) for v in cols[at]]
    return list(zip(*cols, strict=True))


def _sqlite_utc_texts(values: Sequence[dt.datetime | None]) -> list[str | None]:
    """``_sqlite_utc_text`` of many values: a time already in UTC (what the import's
    parsers return) is cut from its ISO text; a time that repeats (a batch's
    "now") is converted once."""
    out: list[str | None] = []
    memo: dict[dt.datetime, str] = {}
    utc = dt.UTC
    for v in values:
        if v is None:
            out.append(None)
        elif v.tzinfo is utc:  # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset
            out.append(v.isoformat(" ", "microseconds")[:-6])
        elif v in memo:
            out.append(memo[v])
        else:
            out.append(memo.setdefault(v, _sqlite_utc_text(v)))
    return out


def _sqlite_utc_text(value: dt.datetime) -> str:
    """What UtcDateTime then SQLite's DATETIME would store, in one call (tested equal)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _driver(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection


def _writer(conn: sa.Connection) -> Any:
    """The driver connection, its SQLite page cache enlarged for bulk writes."""
    driver = _driver(conn)
    if conn.dialect.name == "sqlite":
        driver.execute(f"PRAGMA cache_size = -{_SQLITE_BULK_CACHE_KIB}")
    return driver


def _names(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> tuple[str, str]:
    prep = conn.dialect.identifier_preparer
    return prep.format_table(table), ", ".join(prep.quote(c) for c in columns)


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    raw: Collection[str] = (),
) -> None:
    """INSERT ``rows`` (tuples in ``columns`` order); a constraint violation raises."""
    if not rows:
        return
    values = _columns_processed(conn, table, columns, rows, raw)
    name, cols = _names(conn, table, columns)
    driver = _writer(conn)
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cur:
            _copy_in(cur, f"{name} ({cols})", _copy_types(table, columns, raw), values)
        return
    marks = ", ".join("?" for _ in columns) if conn.dialect.paramstyle == "qmark" else None
    if marks is None:
        marks = ", ".join("%s" for _ in columns)
    cur = driver.cursor()
    try:
        cur.executemany(f"INSERT INTO {name} ({cols}) VALUES ({marks})", values)  # noqa: S608
    finally:
        cur.close()


def _copy_types(table: sa.Table, columns: Sequence[str], raw: Collection[str]) -> list[str] | None:
    """PostgreSQL types to send ``columns`` in COPY's binary format, or None (text format).

    Binary COPY costs the server and psycopg far less than text (no time or
    number text to write and parse): 200,000 rows of a line's columns, 0.58 s
    as text, 0.16 s binary. A string, an enum and a raw JSON text all go as
    ``text``, whose binary form (the UTF-8 bytes) each column type's receive
    function reads as it reads its text.
    """
    out: list[str] = []
    for name in columns:
        col_type: Any = table.c[name].type
        if isinstance(col_type, sa.types.TypeDecorator):
            col_type = col_type.impl_instance
        if isinstance(col_type, sa.String):  # also Text and Enum
            out.append("text")
        elif isinstance(col_type, sa.Boolean):
            out.append("bool")
        elif isinstance(col_type, sa.BigInteger):
            out.append("int8")
        elif isinstance(col_type, sa.SmallInteger):
            out.append("int2")
        elif isinstance(col_type, sa.Integer):
            out.append("int4")
        elif isinstance(col_type, sa.DateTime) and col_type.timezone:
            out.append("timestamptz")
        elif isinstance(col_type, sa.JSON) and name in raw:
            out.append("text")
        else:
            return None
    return out


def _copy_in(cur: Any, target: str, types: list[str] | None, rows: Sequence[Sequence[Any]]) -> None:
    """COPY ``rows`` into ``target`` ("table (columns)"), binary when ``types`` are given."""
    binary = " (FORMAT BINARY)" if types is not None else ""
    with cur.copy(f"COPY {target} FROM STDIN{binary}") as copy:
        if types is not None:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def insert_if_all_new(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    raw: Collection[str] = (),
) -> bool:
    """PostgreSQL: INSERT ``rows`` if none breaks a constraint of ``table``, else
    insert none of them (a savepoint rolled back) and return False. The
    constraints decide, with no look-up of the keys first; the caller then looks
    them up and decides row by row. Other back ends: False, nothing written.
    """
    if conn.dialect.name != "postgresql":
        return False
    if not rows:
        return True
    dbapi = conn.dialect.dbapi
    assert dbapi is not None
    with _writer(conn).cursor() as cur:
        cur.execute("SAVEPOINT resim_bulk_new")
        try:
            insert_rows(conn, table, columns, rows, raw=raw)
        except dbapi.IntegrityError:
            cur.execute("ROLLBACK TO SAVEPOINT resim_bulk_new")
            cur.execute("RELEASE SAVEPOINT resim_bulk_new")
            return False
        cur.execute("RELEASE SAVEPOINT resim_bulk_new")
    return True


def update_rows(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    raw: Collection[str] = (),
) -> None:
    """UPDATE table SET columns WHERE key = ...; each row is (*columns, key value)."""
    if not rows:
        return
    values = _columns_processed(conn, table, [*columns, key], rows, raw)
    name, _ = _names(conn, table, columns)
    prep = conn.dialect.identifier_preparer
    if conn.dialect.name == "postgresql":
        _update_from_copy(conn, table, key, columns, values, raw)
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sets = ", ".join(f"{prep.quote(c)} = {mark}" for c in columns)
    sql = f"UPDATE {name} SET {sets} WHERE {prep.quote(key)} = {mark}"  # noqa: S608
    cur = _writer(conn).cursor()
    try:
        cur.executemany(sql, values)
    finally:
        cur.close()


def _update_from_copy(
    conn: sa.Connection,
    table: sa.Table,
    key: str,
    columns: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    raw: Collection[str],
) -> None:
    """PostgreSQL: COPY the new values into a temporary table, then one UPDATE ... FROM.

    One statement instead of one per row (the server plans and runs each
    single-row UPDATE separately even when psycopg pipelines them). The
    temporary table has the target's column types and is dropped at once.

    The join is a nested loop over the temporary table, each row found
    through the index on ``key`` (which must be unique): hash and merge joins
    are turned off for this one statement (``set_config(..., true)``, local to
    the caller's transaction, then the previous values put back).
    Left to itself, the planner hashed the whole target table for every batch
    (1.3 million SIMs: about 1 s of the 1.9 s a batch of 20,000 lines took;
    0.1 s as a nested loop).

    What remains is the rows' own work. Binding 20,000 SIMs to their lines
    (server CPU, 260,000 SIMs): about 0.6 s, of which the two foreign-key
    checks per row (``line_id``, ``bound_line_id``) about 0.25 s and the new
    entries of the secondary indexes (a non-HOT update writes one in each)
    about 0.3 s. Tried and measured no better: the values as arrays
    (``unnest``) instead of the temporary table, the rows in key order.
    """
    name, _ = _names(conn, table, columns)
    prep = conn.dialect.identifier_preparer
    cols = [*columns, key]
    listed = ", ".join(prep.quote(c) for c in cols)
    sets = ", ".join(f"{prep.quote(c)} = t.{prep.quote(c)}" for c in columns)
    k = prep.quote(key)
    with _writer(conn).cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE resim_bulk_update ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {listed} FROM {name} WITH NO DATA"
        )
        _copy_in(cur, f"resim_bulk_update ({listed})", _copy_types(table, cols, raw), values)
        cur.execute(_JOINS_OFF)
        was = cur.fetchone()
        cur.execute(
            f"UPDATE {name} AS d SET {sets} FROM resim_bulk_update AS t "  # noqa: S608
            f"WHERE d.{k} = t.{k}"
        )
        cur.execute(_JOINS_BACK, was[:2])  # (an error above ends the transaction, and them)
        cur.execute("DROP TABLE resim_bulk_update")


# The planner settings before, then both join methods off for this transaction.
_JOINS_OFF = (
    "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin'), "
    "set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
)
_JOINS_BACK = (
    "SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)"
)


def select_in(
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    key: str,
    keys: Collection[Any],
) -> list[tuple[Any, ...]]:
    """Rows (tuples in ``columns`` order, result-processed) whose ``key`` is in ``keys``.

    ``key`` must be indexed. On PostgreSQL the keys go as one array, each
    looked up in a ``LATERAL`` subquery that ``OFFSET 0`` keeps from being
    flattened into a join: a nested loop of index probes, never a scan of the
    table (``WHERE key = ANY(%s)`` with 20,000 keys was planned as a
    sequential, even parallel, scan of a million rows: 0.3 to 0.7 s). The
    array goes in binary (``%b``): 20,000 ICCIDs cost psycopg 4 ms of CPU
    instead of 11-14 ms as array text.
    """
    wanted = list(set(keys))
    if not wanted:
        return []
    name, cols = _names(conn, table, columns)
    key_sql = conn.dialect.identifier_preparer.quote(key)
    cur = _driver(conn).cursor()
    found: list[tuple[Any, ...]] = []
    try:
        if conn.dialect.name == "postgresql":
            key_type = table.c[key].type.compile(dialect=conn.dialect)
            sql = (
                f"SELECT x.* FROM unnest(%b::{key_type}[]) AS k(v) CROSS JOIN LATERAL "  # noqa: S608
                f"(SELECT {cols} FROM {name} WHERE {key_sql} = k.v OFFSET 0) AS x"
            )
            cur.execute(sql, (wanted,))
            found.extend(cur.fetchall())
        else:
            for at in range(0, len(wanted), _SQLITE_IN_CHUNK):
                part = wanted[at : at + _SQLITE_IN_CHUNK]
                marks = ", ".join("?" for _ in part)
                sql = f"SELECT {cols} FROM {name} WHERE {key_sql} IN ({marks})"  # noqa: S608
                cur.execute(sql, part)
                found.extend(cur.fetchall())
    finally:
        cur.close()
    dialect = conn.dialect
    procs = [table.c[c].type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    if all(p is None for p in procs) or not found:
        return found
    return [
        tuple(v if p is None else p(v) for p, v in zip(procs, row, strict=True)) for row in found
    ]


def is_empty(conn: sa.Connection, table: sa.Table) -> bool:
    """No row at all (one indexed probe)."""
    return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None
