"""``resim import``: lines (with their subscribers) and eSIM profile stock from CSV.

Every row is validated before anything is written; the report names each
rejected row by line number, field and reason. ``dry_run`` writes nothing.
Rows already present (same MSISDN, same ICCID) are skipped, so importing a
file twice changes nothing the second time.

brands.toml: [[brand]] tables (id, name, country, currency, language, timezone, [brand.policy])
lines.csv:  brand_id,msisdn,name,email,language,iccid,imsi,form,pin
stock.csv:  brand_id,iccid,imsi,profile_type[,ki,opc]

``ki`` and ``opc`` (optional) are the SIM's authentication keys, 32 hex digits
each; they go to encrypted columns and are never printed: a bad key is
reported by row and column only.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from resim.adapters.db import orm
from resim.domain.identifiers import normalize_iccid, normalize_imsi, normalize_msisdn
from resim.domain.model import SimForm
from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput, ResimError
from resim.services import seed
from resim.services.context import ServiceContext

LINE_COLUMNS = ("brand_id", "msisdn", "name", "email", "iccid", "imsi")
STOCK_COLUMNS = ("brand_id", "iccid", "imsi", "profile_type")


@dataclass
class RowError:
    line: int
    field: str
    reason: str


@dataclass
class ImportReport:
    kind: str
    read: int = 0
    written: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.kind}: {self.read} rows read, {self.written} written, "
            f"{self.skipped} already present, {len(self.errors)} rejected"
        )


def _rows(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(
                f"{path.name}: missing columns: {', '.join(missing)}", code="IMPORT_COLUMNS"
            )
        return [
            (n + 2, {k: (v or "").strip() for k, v in row.items() if k})
            for n, row in enumerate(reader)
        ]


def _check(row_no: int, fld: str, fn: object, value: str, errors: list[RowError]) -> str | None:
    try:
        return fn(value)  # type: ignore[operator,no-any-return]
    except InvalidInput as exc:
        errors.append(RowError(row_no, fld, exc.message))
        return None


def import_lines(ctx: ServiceContext, path: Path, *, dry_run: bool = False) -> ImportReport:
    report = ImportReport("lines")
    rows = _rows(path, LINE_COLUMNS)
    with ctx.uow() as uow:
        brands = set(uow.session.scalars(sa.select(orm.brand.c.id)))
        have_msisdn = set(uow.session.scalars(sa.select(orm.line.c.msisdn)))
        have_iccid = set(uow.session.scalars(sa.select(orm.sim.c.iccid)))
    seen_msisdn: set[str] = set()
    seen_iccid: set[str] = set()
    valid: list[seed.LineSpec] = []
    for row_no, row in rows:
        report.read += 1
        errs: list[RowError] = []
        if row["brand_id"] not in brands:
            errs.append(RowError(row_no, "brand_id", "unknown brand"))
        msisdn = _check(row_no, "msisdn", normalize_msisdn, row["msisdn"], errs)
        iccid = _check(row_no, "iccid", normalize_iccid, row["iccid"], errs)
        imsi = _check(row_no, "imsi", normalize_imsi, row["imsi"], errs)
        if "@" not in row["email"]:
            errs.append(RowError(row_no, "email", "not an e-mail address"))
        if not row["name"]:
            errs.append(RowError(row_no, "name", "empty"))
        form = row.get("form") or "esim"
        if form not in (SimForm.ESIM.value, SimForm.PHYSICAL.value):
            errs.append(RowError(row_no, "form", "must be esim or physical"))
        if msisdn in seen_msisdn or iccid in seen_iccid:
            errs.append(RowError(row_no, "msisdn", "duplicate of an earlier row in this file"))
        if errs:
            report.errors.extend(errs)
            continue
        assert msisdn and iccid and imsi
        seen_msisdn.add(msisdn)
        seen_iccid.add(iccid)
        if msisdn in have_msisdn:
            if iccid not in have_iccid:
                report.errors.append(RowError(row_no, "msisdn", "number exists with another SIM"))
            else:
                report.skipped += 1
            continue
        valid.append(
            seed.LineSpec(
                brand_id=row["brand_id"],
                msisdn=msisdn,
                name=row["name"],
                email=row["email"],
                iccid=iccid,
                imsi=imsi,
                language=row.get("language") or None,
                form=SimForm(form),
                pin=row.get("pin") or None,
            )
        )
    if not dry_run:
        for spec in valid:
            try:
                seed.add_line(ctx, spec)
                report.written += 1
            except ResimError as exc:
                report.errors.append(RowError(0, "msisdn", f"{spec.msisdn}: {exc.message}"))
    return report


_KEY_HEX = re.compile(r"[0-9A-Fa-f]{32}")


def normalize_sim_key(value: str) -> str | None:
    """A Ki/OPc as 32 upper-case hex digits; empty means none. The message never echoes it."""
    value = value.strip()
    if not value:
        return None
    if not _KEY_HEX.fullmatch(value):
        raise InvalidInput("must be 32 hexadecimal digits (128 bits)", code="SIM_KEY_INVALID")
    return value.upper()


def import_stock(ctx: ServiceContext, path: Path, *, dry_run: bool = False) -> ImportReport:
    report = ImportReport("stock")
    rows = _rows(path, STOCK_COLUMNS)
    with ctx.uow() as uow:
        brands = set(uow.session.scalars(sa.select(orm.brand.c.id)))
        have = set(uow.session.scalars(sa.select(orm.sim.c.iccid)))
    by_brand: dict[tuple[str, str], list[tuple[str, str]]] = {}
    keys: dict[str, tuple[str | None, str | None]] = {}
    seen: set[str] = set()
    for row_no, row in rows:
        report.read += 1
        errs: list[RowError] = []
        if row["brand_id"] not in brands:
            errs.append(RowError(row_no, "brand_id", "unknown brand"))
        iccid = _check(row_no, "iccid", normalize_iccid, row["iccid"], errs)
        imsi = _check(row_no, "imsi", normalize_imsi, row["imsi"], errs)
        if not row["profile_type"]:
            errs.append(RowError(row_no, "profile_type", "empty"))
        if iccid in seen:
            errs.append(RowError(row_no, "iccid", "duplicate of an earlier row in this file"))
        ki = _check(row_no, "ki", normalize_sim_key, row.get("ki", ""), errs)
        opc = _check(row_no, "opc", normalize_sim_key, row.get("opc", ""), errs)
        if errs:
            report.errors.extend(errs)
            continue
        assert iccid and imsi
        seen.add(iccid)
        if iccid in have:
            report.skipped += 1
            continue
        by_brand.setdefault((row["brand_id"], row["profile_type"]), []).append((iccid, imsi))
        if ki or opc:
            keys[iccid] = (ki, opc)
    if not dry_run:
        for (brand_id, profile_type), profiles in by_brand.items():
            report.written += seed.add_stock(
                ctx, brand_id=brand_id, profile_type=profile_type, profiles=profiles, keys=keys
            )
    return report


def import_brands(ctx: ServiceContext, path: Path, *, dry_run: bool = False) -> ImportReport:
    """Brands and their policies from TOML: one ``[[brand]]`` table each (upserted)."""
    report = ImportReport("brands")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path.name}: not valid TOML: {exc}", code="IMPORT_FORMAT") from None
    specs: list[seed.BrandSpec] = []
    for n, raw in enumerate(data.get("brand", []), start=1):
        report.read += 1
        missing = [
            k
            for k in ("id", "name", "country", "currency", "language", "timezone")
            if not isinstance(raw.get(k), str) or not raw[k]
        ]
        if missing:
            report.errors.extend(RowError(n, k, "missing") for k in missing)
            continue
        try:
            policy = BrandPolicy.from_dict(raw.get("policy"))
        except (InvalidInput, TypeError) as exc:
            report.errors.append(RowError(n, "policy", getattr(exc, "message", str(exc))))
            continue
        specs.append(
            seed.BrandSpec(
                raw["id"],
                raw["name"],
                raw["country"].upper(),
                raw["currency"].upper(),
                raw["language"],
                raw["timezone"],
                policy,
            )
        )
    if not dry_run:
        for spec in specs:
            seed.upsert_brand(ctx, spec)
            report.written += 1
    return report
