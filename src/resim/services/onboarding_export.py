"""``resim export``: brands, subscribers, SIMs, lines, SIM changes, locks and stock.

Writes exactly the formats ``resim import`` reads (``resim.services.formats``),
so import -> export -> import is lossless and an operator can leave resim with
its data. Contracts:

- Streaming: rows are read in batches through a server-side cursor
  (``yield_per``) inside one read transaction and written as they come, so
  memory does not grow with the table.
- Deterministic: rows are sorted by the kind's key in byte order (``COLLATE
  "C"`` on PostgreSQL, SQLite's BINARY), so the same data gives the same bytes
  on both back ends.
- Secrets: PIN and password go out as their argon2id hashes, never clear.
  SIM keys (``ki``, ``opc``) are decrypted and written only with
  ``include_keys``, only to the file; nothing here logs or returns a key.
- Times are written in UTC, ISO 8601 with the zone.
- ``sims`` holds every SIM except eSIM profiles in stock, which are ``stock``;
  a line's ``iccid`` is the SIM bound to it (none for a ceased line).
- ``stock.smdp`` is left empty: resim keeps one SM-DP+ per installation
  (``RESIM_SMDP_ADDRESS``), not one per profile.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.adapters.db.types import UtcDateTime
from resim.domain.model import SimForm, SimState
from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput
from resim.services import formats
from resim.services.context import ServiceContext
from resim.services.unit_of_work import UnitOfWork

BATCH = 2000
Row = Mapping[str, str | None]


@dataclass
class ExportReport:
    """What one export wrote: rows per kind and the files."""

    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        return "\n".join(f"{k}: {n} rows -> {self.files[k]}" for k, n in self.counts.items())


def _text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, dt.datetime):
        return formats.format_time(value)
    return str(value)


def _sorted(uow: UnitOfWork, *cols: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    if uow.dialect == "postgresql":
        return [c.collate("C") for c in cols]
    return list(cols)


def _stream(uow: UnitOfWork, stmt: sa.Select[Any]) -> Iterator[dict[str, Any]]:
    result = uow.session.execute(stmt.execution_options(yield_per=BATCH))
    for row in result.mappings():
        yield dict(row)


def _brand_filter(stmt: sa.Select[Any], col: sa.ColumnElement[Any], brand_id: str | None) -> Any:
    return stmt if brand_id is None else stmt.where(col == brand_id)


def _subscribers(uow: UnitOfWork, brand_id: str | None, _keys: bool) -> Iterator[Row]:
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
    for row in _stream(uow, _brand_filter(stmt, s.brand_id, brand_id)):
        yield {k: _text(v) for k, v in row.items()}


def _sim_rows(uow: UnitOfWork, brand_id: str | None, keys: bool, *, stock: bool) -> Iterator[Row]:
    s = orm.sim.c
    cols: list[Any] = [s.iccid, s.imsi, s.form, s.state, s.brand_id, s.profile_type]
    if keys:
        cols += [s.ki, s.opc]
    in_stock = sa.and_(s.form == SimForm.ESIM, s.state == SimState.IN_STOCK)
    stmt = sa.select(*cols).where(in_stock if stock else sa.not_(in_stock))
    stmt = _brand_filter(stmt.order_by(*_sorted(uow, s.iccid)), s.brand_id, brand_id)
    for row in _stream(uow, stmt):
        yield {k: _text(v) for k, v in row.items()}


def _sims(uow: UnitOfWork, brand_id: str | None, keys: bool) -> Iterator[Row]:
    return _sim_rows(uow, brand_id, keys, stock=False)


def _stock(uow: UnitOfWork, brand_id: str | None, keys: bool) -> Iterator[Row]:
    return _sim_rows(uow, brand_id, keys, stock=True)


def _lines(uow: UnitOfWork, brand_id: str | None, _keys: bool) -> Iterator[Row]:
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
    for row in _stream(uow, _brand_filter(stmt, ln.brand_id, brand_id)):
        yield {k: _text(v) for k, v in row.items()}


def _sim_changes(uow: UnitOfWork, brand_id: str | None, _keys: bool) -> Iterator[Row]:
    c, ln = orm.sim_change.c, orm.line.c
    stmt = (
        sa.select(c.msisdn, c.changed_at, c.old_iccid, c.new_iccid)
        .select_from(orm.sim_change.join(orm.line, ln.id == c.line_id))
        .order_by(*_sorted(uow, c.msisdn), c.changed_at, *_sorted(uow, c.new_iccid))
    )
    for row in _stream(uow, _brand_filter(stmt, ln.brand_id, brand_id)):
        yield {k: _text(v) for k, v in row.items()}


def _locks(uow: UnitOfWork, brand_id: str | None, _keys: bool) -> Iterator[Row]:
    ln = orm.line.c
    # type_coerce: coalesce() would lose the column type (and the UTC zone) on SQLite.
    at = sa.type_coerce(sa.func.coalesce(ln.lock_changed_at, ln.created_at), UtcDateTime)
    stmt = (
        sa.select(ln.msisdn, at.label("locked_at"))
        .where(ln.sim_change_locked.is_(True))
        .order_by(*_sorted(uow, ln.msisdn))
    )
    for row in _stream(uow, _brand_filter(stmt, ln.brand_id, brand_id)):
        yield {k: _text(v) for k, v in row.items()}


_ROWS: dict[str, Callable[[UnitOfWork, str | None, bool], Iterator[Row]]] = {
    "subscribers": _subscribers,
    "sims": _sims,
    "lines": _lines,
    "sim_changes": _sim_changes,
    "locks": _locks,
    "stock": _stock,
}


def _brands(uow: UnitOfWork, brand_id: str | None) -> list[dict[str, Any]]:
    b = orm.brand.c
    stmt = _brand_filter(sa.select(orm.brand).order_by(*_sorted(uow, b.id)), b.id, brand_id)
    out = []
    for row in uow.session.execute(stmt).mappings():
        try:  # every field, defaults included, so the file says what resim applies
            policy = BrandPolicy.from_dict(row["policy_data"]).to_dict()
        except (InvalidInput, TypeError):
            policy = dict(row["policy_data"] or {})
        out.append({**{k: row[k] for k in formats.BRAND_FIELDS}, "policy": policy})
    return out


def _snapshot(uow: UnitOfWork) -> None:
    # One snapshot for every file of an export: on PostgreSQL the read
    # transaction is REPEATABLE READ, so a line never names a SIM that
    # sims.csv lacks because a replacement committed in between. (SQLite:
    # stop writers, or export from a copy of the file.)
    if uow.dialect == "postgresql":
        uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _write(uow: UnitOfWork, kind: str, path: Path, brand_id: str | None, include_keys: bool) -> int:
    fmt = formats.file_format(path)
    tmp = path.with_name(path.name + ".tmp")
    if kind == "brands":
        brands = _brands(uow, brand_id)
        if fmt == "toml":
            text = formats.brands_toml(brands)
        elif fmt == "yaml":
            text = formats.brands_yaml(brands)
        else:
            raise InvalidInput("brands go to .toml or .yaml", code="ONBOARDING_FORMAT")
        tmp.write_text(text, encoding="utf-8")
        count = len(brands)
    else:
        columns = formats.export_columns(kind, include_keys=include_keys)
        with formats.RowWriter(tmp, columns, fmt=fmt) as w:
            for row in _ROWS[kind](uow, brand_id, include_keys):
                w.write(row)
            count = w.count
    tmp.replace(path)
    return count


def export_kind(
    ctx: ServiceContext,
    kind: str,
    path: Path,
    *,
    brand_id: str | None = None,
    include_keys: bool = False,
) -> int:
    """Write every row of ``kind`` (optionally one brand's) to ``path``; return the count.

    The format follows the extension (.csv/.jsonl, brands .toml/.yaml). The file
    is written to ``path.tmp`` and renamed when complete, so a killed export
    never leaves a truncated file under the final name.
    """
    kind = formats.kind_name(kind)
    formats.file_format(path)  # refuse an unknown extension before reading anything
    with ctx.uow() as uow:
        return _write(uow, kind, path, brand_id, include_keys)


def export_all(
    ctx: ServiceContext,
    directory: Path,
    *,
    brand_id: str | None = None,
    include_keys: bool = False,
    fmt: str = "csv",
) -> ExportReport:
    """Every kind into ``directory``: ``brands.toml`` and ``<kind>.<fmt>`` (csv or jsonl).

    All files come from one read transaction (one snapshot on PostgreSQL).
    """
    if fmt not in ("csv", "jsonl"):
        raise InvalidInput("export all writes csv or jsonl", code="ONBOARDING_FORMAT")
    directory.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    with ctx.uow() as uow:
        _snapshot(uow)
        for kind in formats.KINDS:
            path = directory / ("brands.toml" if kind == "brands" else f"{kind}.{fmt}")
            report.counts[kind] = _write(uow, kind, path, brand_id, include_keys)
            report.files[kind] = path
    return report
