"""Brands and their policies from TOML (``[[brand]]`` tables) or YAML (``brand:`` list).

A small file, read whole. Entries are numbered from 1 in the report. A brand
that exists is updated when its entry differs (``written``), else ``unchanged``.
"""

from __future__ import annotations

import tomllib
import zoneinfo
from pathlib import Path
from typing import Any

import yaml

from resim.domain.policy import BrandPolicy
from resim.errors import InvalidInput
from resim.services.onboarding import fields, seed
from resim.services.onboarding.base import BrandInfo, Pending
from resim.services.onboarding.ports import BrandRow, ImportStore
from resim.services.onboarding.report import ImportReport, RowError
from resim.services.onboarding.source import file_format

_TEXT = ("id", "name", "country", "currency", "language", "timezone")


def read_entries(path: Path) -> list[Any]:
    fmt = file_format(path)
    text = path.read_text(encoding="utf-8")
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        elif fmt == "yaml":
            data = yaml.safe_load(text) or {}
        else:
            raise InvalidInput(f"{path.name}: brands take .toml or .yaml", code="IMPORT_FORMAT")
    except (tomllib.TOMLDecodeError, yaml.YAMLError):
        raise InvalidInput(f"{path.name}: not valid {fmt.upper()}", code="IMPORT_FORMAT") from None
    if not isinstance(data, dict) or not isinstance(data.get("brand", []), list):
        raise InvalidInput(f"{path.name}: expected a 'brand' list", code="IMPORT_FORMAT")
    return list(data.get("brand", []))


def parse_entry(n: int, raw: Any) -> tuple[seed.BrandSpec | None, list[RowError]]:
    if not isinstance(raw, dict):
        return None, [RowError(n, "brand", "not a table")]
    errors = [
        RowError(n, k, "missing") for k in _TEXT if not isinstance(raw.get(k), str) or not raw[k]
    ]
    if errors:
        return None, errors
    try:
        fields.brand_id(raw["id"])
    except fields.FieldError as exc:
        errors.append(RowError(n, "id", exc.reason))
    if len(raw["country"]) != 2 or not raw["country"].isalpha():
        errors.append(RowError(n, "country", "must be an ISO 3166 alpha-2 code"))
    if len(raw["currency"]) != 3 or not raw["currency"].isalpha():
        errors.append(RowError(n, "currency", "must be an ISO 4217 code"))
    try:
        fields.language(raw["language"])
    except fields.FieldError as exc:
        errors.append(RowError(n, "language", exc.reason))
    try:
        zoneinfo.ZoneInfo(raw["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.append(RowError(n, "timezone", "unknown time zone"))
    try:
        policy = BrandPolicy.from_dict(raw.get("policy"))
    except (InvalidInput, TypeError, ValueError) as exc:
        errors.append(RowError(n, "policy", getattr(exc, "message", "invalid policy")))
    if errors:
        return None, errors
    spec = seed.BrandSpec(
        raw["id"],
        raw["name"],
        raw["country"].upper(),
        raw["currency"].upper(),
        raw["language"],
        raw["timezone"],
        policy,
    )
    return spec, []


def import_brands(
    store: ImportStore,
    path: Path,
    report: ImportReport,
    *,
    dry_run: bool,
    strict: bool,
    pending: Pending | None = None,
) -> None:
    """Validate every entry, then upsert the valid ones (one transaction each)."""
    specs: list[seed.BrandSpec] = []
    for n, raw in enumerate(read_entries(path), start=1):
        report.read += 1
        spec, errors = parse_entry(n, raw)
        if errors:
            report.rejected += 1
            for error in errors:
                report.add(error)
        elif spec is not None:
            specs.append(spec)
            if pending is not None:
                pending.brands[spec.id] = BrandInfo(spec.country, spec.language)
    with store.reading() as reads:
        have = {r.id: r for r in reads.brands()}
    changed = []
    for spec in specs:
        row = have.get(spec.id)
        same = row is not None and (
            (row.name, row.country, row.currency, row.language, row.timezone, row.policy_data)
            == (spec.name, spec.country, spec.currency, spec.language, spec.timezone,
                spec.policy.to_dict())
        )  # fmt: skip
        if same:
            report.unchanged += 1
        else:
            changed.append(spec)
            report.new += 1
    if dry_run or (strict and report.bad):
        report.held_back = not dry_run and bool(changed)
        return
    for spec in changed:
        with store.writing() as writes:
            writes.upsert_brand(
                BrandRow(spec.id, spec.name, spec.country, spec.currency, spec.language,
                         spec.timezone, spec.policy.to_dict())
            )  # fmt: skip
        report.written += 1
