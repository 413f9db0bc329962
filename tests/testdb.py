"""Test databases: migrated once per test process, copied or reset per test.

Running Alembic for every test cost most of the integration suite's set-up
time (creating a PostgreSQL database and migrating it took 0.5-0.7 s). Here:

* SQLite: the schema is migrated once into a template file per process; each
  test gets a byte copy of it (the template is closed and checkpointed first,
  so the copy is a complete database).
* PostgreSQL: a template database is migrated once per process; databases are
  created from it (``CREATE DATABASE .. TEMPLATE``) and, after a test, reset
  and kept for the next test when the test left the schema as it found it:
  other sessions are ended, every table is emptied (with triggers off, so the
  audit table's append-only guard does not refuse), sequences restart, and
  the rows the migrations themselves wrote are put back. A test that changed
  the schema (dropped a trigger, downgraded) gets its database dropped.

Each xdist worker is its own process with its own template and pool, so
workers never share a database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from resim.adapters.db.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "RESIM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# The schema's shape: tables, columns, constraints, indexes and triggers of
# the public schema. Equal before and after a test means the database can be
# reset with TRUNCATE and reused.
_FINGERPRINT = sa.text(
    """
    SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
      SELECT 'c:' || table_name || '.' || column_name || ':' || data_type
             || ':' || is_nullable || ':' || coalesce(column_default, '') AS item
        FROM information_schema.columns WHERE table_schema = 'public'
      UNION ALL
      SELECT 'k:' || conrelid::regclass::text || '.' || conname || ':' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
      UNION ALL
      SELECT 'i:' || indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
      UNION ALL
      SELECT 't:' || tgrelid::regclass::text || '.' || tgname || ':' || tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
       WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
      UNION ALL
      SELECT 'v:' || alembic_version.version_num FROM alembic_version
    ) AS parts
    """
)


_RESTART_SEQUENCES = sa.text(
    "SELECT setval(s.seqrelid::regclass, s.seqstart, false) FROM pg_sequence s"
    " JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = 'public'::regnamespace"
)


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _url(name: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def make_pg_database() -> tuple[str, str]:
    """Create a fresh, empty PostgreSQL database; return (url, name)."""
    name = f"resim_t_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return _url(name), name


def drop_pg_database(name: str) -> None:
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class SqliteTemplate:
    """One migrated SQLite file per process; :meth:`copy_to` makes a test's copy."""

    def __init__(self) -> None:
        self._path: Path | None = None

    def copy_to(self, target: Path) -> str:
        if self._path is None:
            workdir = Path(tempfile.mkdtemp(prefix="resim-template-"))
            atexit.register(shutil.rmtree, workdir, True)
            path = workdir / "template.db"
            upgrade(f"sqlite:///{path}")
            # Fold any write-ahead log into the main file so one file is the
            # whole database.
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            self._path = path
        shutil.copyfile(self._path, target)
        return f"sqlite:///{target}"


class PgPool:
    """Migrated PostgreSQL databases for one process: a template and free copies."""

    def __init__(self) -> None:
        self._template: str | None = None
        self._fingerprint = ""
        self._seed_rows: list[tuple[sa.Table, list[dict[str, Any]]]] = []
        self._tables: list[str] = []
        self._free: list[str] = []
        self._all: set[str] = set()
        self._admin: sa.Engine | None = None

    def _admin_engine(self) -> sa.Engine:
        if self._admin is None:
            self._admin = _admin()
        return self._admin

    def _prepare_template(self) -> None:
        url, name = make_pg_database()
        upgrade(url)
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                self._fingerprint = conn.execute(_FINGERPRINT).scalar_one()
                inspector = sa.inspect(conn)
                self._tables = [t for t in inspector.get_table_names() if t != "alembic_version"]
                meta = sa.MetaData()
                meta.reflect(conn, only=self._tables)
                for table in meta.sorted_tables:
                    rows = [dict(r._mapping) for r in conn.execute(sa.select(table))]
                    if rows:
                        self._seed_rows.append((table, rows))
        finally:
            engine.dispose()
        self._template = name

    def take(self) -> str:
        """A migrated database nobody else uses; its URL."""
        if self._free:
            name = self._free.pop()
            return _url(name)
        if self._template is None:
            self._prepare_template()
        name = f"resim_t_{uuid.uuid4().hex[:12]}"
        with self._admin_engine().connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"'))
            # Tests never survive a PostgreSQL crash, so commits need not wait
            # for the disk; this halves the time of commit-heavy tests.
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        self._all.add(name)
        return _url(name)

    def give_back(self, url: str) -> None:
        """Reset the database at ``url`` for the next test, or drop it."""
        name = sa.make_url(url).database
        assert name is not None
        admin = self._admin_engine()
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        if self._reset(url):
            self._free.append(name)
        else:
            self._drop(name)

    def _reset(self, url: str) -> bool:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with engine.begin() as conn:
                if conn.execute(_FINGERPRINT).scalar_one() != self._fingerprint:
                    return False
                # replica: ordinary triggers (the audit guard) and foreign-key
                # checks are off for this transaction only.
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                # DELETE, not TRUNCATE: test tables are small, and TRUNCATE
                # makes new files for every table and index (ten times dearer).
                for table in self._tables:
                    conn.execute(sa.text(f'DELETE FROM "{table}"'))  # noqa: S608 (reflected names)
                conn.execute(_RESTART_SEQUENCES)
                for table, rows in self._seed_rows:
                    conn.execute(table.insert(), rows)
            return True
        except sa.exc.SQLAlchemyError:
            return False
        finally:
            engine.dispose()

    def _drop(self, name: str) -> None:
        with self._admin_engine().connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._all.discard(name)

    def close(self) -> None:
        for name in sorted(self._all):
            self._drop(name)
        self._free.clear()
        if self._template is not None:
            self._drop(self._template)
            self._template = None
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None
