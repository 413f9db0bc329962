"""``resim export``: brands, subscribers, SIMs, lines, SIM changes, locks and stock.

Writes exactly the formats ``resim import`` reads (``resim.services.onboarding.formats``),
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput
from resim.services.context import ServiceContext
from resim.services.onboarding import formats
from resim.services.unit_of_work import UnitOfWork

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


def _brands(uow: UnitOfWork, brand_id: str | None) -> list[dict[str, Any]]:
    out = []
    for row in uow.export.brands(brand_id):
        try:  # every field, defaults included, so the file says what resim applies
            policy = BrandPolicy.from_dict(row["policy_data"]).to_dict()
        except (InvalidInput, TypeError):
            policy = dict(row["policy_data"] or {})
        out.append({**{k: row[k] for k in formats.BRAND_FIELDS}, "policy": policy})
    return out


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
            for row in uow.export.rows(kind, brand_id, include_keys):
                w.write({k: _text(v) for k, v in row.items()})
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
        uow.export.snapshot()
        for kind in formats.KINDS:
            path = directory / ("brands.toml" if kind == "brands" else f"{kind}.{fmt}")
            report.counts[kind] = _write(uow, kind, path, brand_id, include_keys)
            report.files[kind] = path
    return report
