"""``SqlImportStore``: the onboarding import's port (``services.onboarding.ports``) on SQL.

Reads and writes go through :mod:`resim.adapters.db.bulk` (one driver call
per batch: SQLite ``executemany``, PostgreSQL ``COPY`` and ``= ANY``).

Transactions: ``writing()`` is one session transaction (on SQLite the
engine's ``BEGIN IMMEDIATE``), committed when the block ends normally.
``reading()`` in the process that built the store is a session transaction
too, rolled back at the end; after :meth:`SqlImportStore.after_fork` (a child
that only checks rows) it is a connection of a read engine of its own
(``engine.create_read_engine``: SQLite autocommit reads that never take the
write lock, PostgreSQL autocommit), so the child reads while the parent writes.

Encrypted columns: personal fields and SIM keys are encrypted here in bulk
(``SecretBox.encrypt_many``) and given to ``bulk`` as raw values; look-ups
that return them decrypt through the column type with the store's keys bound.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from resim.adapters.crypto import SecretBox, bind_secrets
from resim.adapters.db import bulk, orm
from resim.adapters.db.engine import create_read_engine
from resim.services.onboarding import ports as p

_SUB_ENCRYPTED = ("name", "email", "alt_msisdn", "postal_address")
_SUB_WRITTEN = (
    "id", "brand_id", "language", "created_at", "pin_hash", "password_hash", *_SUB_ENCRYPTED,
    "fraud_flags", "known_countries", "known_devices",
)  # fmt: skip
_SIM_WRITTEN = ("iccid", "imsi", "form", "state", "brand_id", "profile_type", "ki", "opc")
_LINE_WRITTEN = (
    "id", "msisdn", "subscriber_id", "brand_id", "status", "created_at", "awaiting_sim",
    "sim_change_locked",
)  # fmt: skip
_CHANGE_WRITTEN = ("id", "msisdn", "line_id", "changed_at", "new_iccid", "old_iccid")
_TABLES = {
    p.SUBSCRIBER: orm.subscriber,
    p.SIM: orm.sim,
    p.LINE: orm.line,
    p.SIM_CHANGE: orm.sim_change,
}


class SqlReads:
    """Pass 1's batched look-ups on one connection (``ports.ImportReads``)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def _select(
        self, table: sa.Table, columns: Sequence[str], key: str, keys: Collection[Any]
    ) -> list[tuple[Any, ...]]:
        return bulk.select_in(self._conn, table, columns, key, keys)

    def brands(self) -> list[p.BrandRow]:
        b = orm.brand
        rows = self._conn.execute(
            sa.select(b.c.id, b.c.name, b.c.country, b.c.currency, b.c.language, b.c.timezone,
                      b.c.policy_data)
        )  # fmt: skip
        return [p.BrandRow(*r) for r in rows]

    def empty_tables(self) -> frozenset[str]:
        return frozenset(n for n, t in _TABLES.items() if bulk.is_empty(self._conn, t))

    def subscribers(self, ids: Collection[str]) -> list[p.SubscriberRow]:
        rows = self._select(orm.subscriber, p.SubscriberRow._fields, "id", ids)
        return [p.SubscriberRow(*r) for r in rows]

    def subscriber_brands(self, ids: Collection[str]) -> dict[str, str]:
        return dict(self._select(orm.subscriber, ("id", "brand_id"), "id", ids))

    def sims(self, iccids: Collection[str]) -> list[p.SimRow]:
        return [p.SimRow(*r) for r in self._select(orm.sim, p.SimRow._fields, "iccid", iccids)]

    def sim_imsis(self, iccids: Collection[str]) -> dict[str, str]:
        return dict(self._select(orm.sim, ("iccid", "imsi"), "iccid", iccids))

    def imsi_holders(self, imsis: Collection[str]) -> dict[str, str]:
        return dict(self._select(orm.sim, ("imsi", "iccid"), "imsi", imsis))

    def sim_keys(self, iccids: Collection[str]) -> dict[str, tuple[str | None, str | None]]:
        rows = self._select(orm.sim, ("iccid", "ki", "opc"), "iccid", iccids)
        return {r[0]: (r[1], r[2]) for r in rows}

    def lines(self, msisdns: Collection[str]) -> list[p.LineRow]:
        rows = self._select(orm.line, p.LineRow._fields, "msisdn", msisdns)
        return [p.LineRow(*r) for r in rows]

    def line_ids(self, msisdns: Collection[str]) -> dict[str, str]:
        return dict(self._select(orm.line, ("msisdn", "id"), "msisdn", msisdns))

    def locks(self, msisdns: Collection[str]) -> list[p.LockRow]:
        rows = self._select(orm.line, p.LockRow._fields, "msisdn", msisdns)
        return [p.LockRow(*r) for r in rows]

    def sim_changes(self, msisdns: Collection[str]) -> list[p.SimChangeRow]:
        rows = self._select(orm.sim_change, p.SimChangeRow._fields, "msisdn", msisdns)
        return [p.SimChangeRow(*r) for r in rows]


class SqlWrites:
    """Pass 2's bulk statements inside one transaction (``ports.ImportWrites``)."""

    def __init__(self, conn: sa.Connection, box: SecretBox) -> None:
        self._conn = conn
        self._box = box

    def upsert_brand(self, brand: p.BrandRow) -> None:
        b = orm.brand
        values = brand._asdict()
        exists = self._conn.execute(sa.select(b.c.id).where(b.c.id == brand.id)).first()
        if exists is None:
            self._conn.execute(b.insert().values(values))
        else:
            self._conn.execute(b.update().where(b.c.id == brand.id).values(values))

    def add_subscribers(self, rows: Sequence[p.NewSubscriber]) -> None:
        if not rows:
            return
        plain: list[Sequence[Any]] = list(zip(*rows, strict=True))
        at = len(p.NewSubscriber._fields) - len(_SUB_ENCRYPTED)
        columns = plain[:at] + [self._box.encrypt_many(c) for c in plain[at:]]
        n = len(rows)
        # known_countries / known_devices: an empty JSON list, serialised once
        columns += [[0] * n, ["[]"] * n, ["[]"] * n]
        values = list(zip(*columns, strict=True))
        raw = (*_SUB_ENCRYPTED, "known_countries", "known_devices")
        bulk.insert_rows(self._conn, orm.subscriber, _SUB_WRITTEN, values, raw=raw)

    def add_sims(self, rows: Sequence[p.NewSim]) -> None:
        if not rows:
            return
        ki = self._box.encrypt_many([r.ki for r in rows])
        opc = self._box.encrypt_many([r.opc for r in rows])
        values = [(*r[:6], k, o) for r, k, o in zip(rows, ki, opc, strict=True)]
        bulk.insert_rows(self._conn, orm.sim, _SIM_WRITTEN, values, raw=("ki", "opc"))

    def add_lines(self, rows: Sequence[p.NewLine]) -> None:
        bulk.insert_rows(self._conn, orm.line, _LINE_WRITTEN, [(*r, False) for r in rows])

    def bind_sims(self, rows: Sequence[p.SimBinding]) -> None:
        # A SIM already in its new state keeps it: an UPDATE that names
        # ``state`` rewrites the entry of the stock index (brand, form, state,
        # profile) even for the same value.
        bulk.update_rows(
            self._conn,
            orm.sim,
            "iccid",
            ("state", "line_id", "bound_line_id"),
            [(r.state, r.line_id, r.bound_line_id, r.iccid) for r in rows if r.state is not None],
        )
        bulk.update_rows(
            self._conn,
            orm.sim,
            "iccid",
            ("line_id", "bound_line_id"),
            [(r.line_id, r.bound_line_id, r.iccid) for r in rows if r.state is None],
        )

    def add_sim_changes(self, rows: Sequence[p.NewSimChange]) -> None:
        bulk.insert_rows(self._conn, orm.sim_change, _CHANGE_WRITTEN, rows)

    def lock_lines(self, rows: Sequence[tuple[str, dt.datetime]]) -> None:
        bulk.update_rows(
            self._conn,
            orm.line,
            "msisdn",
            ("sim_change_locked", "lock_changed_at"),
            [(True, at, msisdn) for msisdn, at in rows],
        )


class SqlImportStore:
    """``ports.ImportStore`` on resim's engine (the session factory's bind)."""

    def __init__(self, sessions: sessionmaker[Session], secrets: SecretBox) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._read_engine: sa.Engine | None = None

    def _engine(self) -> sa.Engine:
        bind = self._sessions.kw["bind"]
        assert isinstance(bind, sa.Engine)
        return bind

    @property
    def parallel_writes(self) -> bool:
        return self._engine().url.get_backend_name() == "postgresql"

    @property
    def shareable(self) -> bool:
        url = self._engine().url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    @contextlib.contextmanager
    def reading(self) -> Iterator[SqlReads]:
        with bind_secrets(self._secrets):
            if self._read_engine is not None:
                with self._read_engine.connect() as conn:
                    yield SqlReads(conn)
                return
            with self._sessions() as session:
                try:
                    yield SqlReads(session.connection())
                finally:
                    session.rollback()

    @contextlib.contextmanager
    def writing(self) -> Iterator[SqlWrites]:
        with bind_secrets(self._secrets), self._sessions() as session:
            yield SqlWrites(session.connection(), self._secrets)
            session.commit()

    def after_fork(self) -> None:
        engine = self._engine()
        engine.dispose(close=False)  # the parent's connections: never used nor closed here
        url = engine.url.render_as_string(hide_password=False)
        # No JIT: a look-up of 20,000 keys (index probes, estimated above
        # ``jit_above_cost``) spent 12 ms of its 135 compiling expressions.
        self._read_engine = create_read_engine(
            url, pool_size=1, max_overflow=0, pg_options="-c jit=off"
        )
