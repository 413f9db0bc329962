"""SQL of the onboarding export (:mod:`resim.services.stores.export`): every row of
each kind, streamed in batches, in the order the files list them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.stores import SessionHolder
from resim.adapters.db.types import UtcDateTime
from resim.domain.model import SimForm

BATCH = 2000


def _sorted(uow: SessionHolder, *cols: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    if uow.dialect == "postgresql":
        return [c.collate("C") for c in cols]
    return list(cols)


def _stream(uow: SessionHolder, stmt: sa.Select[Any]) -> Iterator[dict[str, Any]]:
    result = uow.session.execute(stmt.execution_options(yield_per=BATCH))
    for row in result.mappings():
        yield dict(row)


def _brand_filter(stmt: sa.Select[Any], col: sa.ColumnElement[Any], brand_id: str | None) -> Any:
    return stmt if brand_id is None else stmt.where(col == brand_id)


def _subscribers(uow: SessionHolder, brand_id: str | None, _keys: bool) -> Iterator[dict[str, Any]]:
    s = orm.subscriber.c
    stmt = sa.select(
        s.id.label("subscriber_id"),
        s.brand_id,
        s.name,
        s.email,
        s.language,
        s.alt_msisdn,
        s.postal_address,
        s.pin_hash,
        s.password_hash,
        s.created_at,
    ).order_by(*_sorted(uow, s.id))
    yield from _stream(uow, _brand_filter(stmt, s.brand_id, brand_id))


def _sim_rows(
    uow: SessionHolder, brand_id: str | None, keys: bool, *, stock: bool
) -> Iterator[dict[str, Any]]:
    s = orm.sim.c
    cols: list[Any] = [s.iccid, s.imsi, s.form, s.state, s.brand_id, s.profile_type]
    if keys:
        cols += [s.ki, s.opc]
    in_stock = sa.and_(s.form == SimForm.ESIM, orm.SIM_IN_STOCK)
    stmt = sa.select(*cols).where(in_stock if stock else sa.not_(in_stock))
    stmt = _brand_filter(stmt.order_by(*_sorted(uow, s.iccid)), s.brand_id, brand_id)
    yield from _stream(uow, stmt)


def _sims(uow: SessionHolder, brand_id: str | None, keys: bool) -> Iterator[dict[str, Any]]:
    return _sim_rows(uow, brand_id, keys, stock=False)


def _stock(uow: SessionHolder, brand_id: str | None, keys: bool) -> Iterator[dict[str, Any]]:
    return _sim_rows(uow, brand_id, keys, stock=True)


def _lines(uow: SessionHolder, brand_id: str | None, _keys: bool) -> Iterator[dict[str, Any]]:
    ln, sm = orm.line.c, orm.sim.c
    stmt = (
        sa.select(
            ln.msisdn,
            ln.subscriber_id,
            ln.brand_id,
            ln.status,
            sm.iccid,
            ln.created_at,
        )
        .select_from(orm.line.outerjoin(orm.sim, sm.bound_line_id == ln.id))
        .order_by(*_sorted(uow, ln.msisdn))
    )
    yield from _stream(uow, _brand_filter(stmt, ln.brand_id, brand_id))


def _sim_changes(uow: SessionHolder, brand_id: str | None, _keys: bool) -> Iterator[dict[str, Any]]:
    c, ln = orm.sim_change.c, orm.line.c
    stmt = (
        sa.select(c.msisdn, c.changed_at, c.old_iccid, c.new_iccid)
        .select_from(orm.sim_change.join(orm.line, ln.id == c.line_id))
        .order_by(*_sorted(uow, c.msisdn), c.changed_at, *_sorted(uow, c.new_iccid))
    )
    yield from _stream(uow, _brand_filter(stmt, ln.brand_id, brand_id))


def _locks(uow: SessionHolder, brand_id: str | None, _keys: bool) -> Iterator[dict[str, Any]]:
    ln = orm.line.c
    # type_coerce: coalesce() would lose the column type (and the UTC zone) on SQLite.
    at = sa.type_coerce(sa.func.coalesce(ln.lock_changed_at, ln.created_at), UtcDateTime)
    stmt = (
        sa.select(ln.msisdn, at.label("locked_at"))
        .where(ln.sim_change_locked.is_(True))
        .order_by(*_sorted(uow, ln.msisdn))
    )
    yield from _stream(uow, _brand_filter(stmt, ln.brand_id, brand_id))


_ROWS: dict[str, Callable[[SessionHolder, str | None, bool], Iterator[dict[str, Any]]]] = {
    "subscribers": _subscribers,
    "sims": _sims,
    "lines": _lines,
    "sim_changes": _sim_changes,
    "locks": _locks,
    "stock": _stock,
}


class SqlExportQueries:
    def __init__(self, uow: SessionHolder) -> None:
        self._uow = uow

    def snapshot(self) -> None:
        # One snapshot for every file of an export: on PostgreSQL the read
        # transaction is REPEATABLE READ, so a line never names a SIM that
        # sims.csv lacks because a replacement committed in between. (SQLite:
        # stop writers, or export from a copy of the file.)
        if self._uow.dialect == "postgresql":
            self._uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    def brands(self, brand_id: str | None) -> list[dict[str, Any]]:
        b = orm.brand.c
        stmt = _brand_filter(
            sa.select(orm.brand).order_by(*_sorted(self._uow, b.id)), b.id, brand_id
        )
        return [dict(row) for row in self._uow.session.execute(stmt).mappings()]

    def rows(self, kind: str, brand_id: str | None, include_keys: bool) -> Iterator[dict[str, Any]]:
        return _ROWS[kind](self._uow, brand_id, include_keys)
