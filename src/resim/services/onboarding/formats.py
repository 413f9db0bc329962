"""The onboarding file formats, shared by import, export and the demo-data generator.

One place for what each kind of file holds (docs/export-and-demo-data.md and
docs/onboarding.md describe them for operators):

- CSV with a header row, or JSON Lines (one object a line) with the same keys;
  the format follows the file extension (``.csv``, ``.jsonl``). An empty CSV
  cell and a missing JSON key both mean "absent".
- Times are ISO 8601 with a zone. Export writes them in UTC
  (``2024-03-05T10:11:12+00:00``); files from operators may use any offset.
- brands: TOML (``[[brand]]`` tables with a ``[brand.policy]``) or YAML (a
  top-level ``brand:`` list of the same mappings).

``COLUMNS[kind]`` lists every column a file of that kind may carry, in the
order export writes them; ``SECRET_COLUMNS`` are the SIM keys export writes only
when asked; ``CLEAR_SECRET_COLUMNS`` are accepted on import only (clear PIN and
password, hashed on import) and never written by export.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from resim.errors import InvalidInput

# Import order for a full onboarding; ``resim export all`` writes them all.
KINDS = ("brands", "subscribers", "sims", "lines", "sim_changes", "locks", "stock")
TABULAR_KINDS = KINDS[1:]

COLUMNS: dict[str, tuple[str, ...]] = {
    "subscribers": (
        "subscriber_id",
        "brand_id",
        "name",
        "email",
        "language",
        "alt_msisdn",
        "postal_address",
        "pin_hash",
        "password_hash",
        "pin",
        "password",
        "created_at",
    ),
    "sims": ("iccid", "imsi", "form", "state", "brand_id", "profile_type", "ki", "opc"),
    "lines": ("msisdn", "subscriber_id", "brand_id", "status", "iccid", "created_at"),
    "sim_changes": ("msisdn", "changed_at", "old_iccid", "new_iccid"),
    "locks": ("msisdn", "locked_at"),
    "stock": ("iccid", "imsi", "brand_id", "profile_type", "smdp", "ki", "opc"),
}
# The key of each kind: unique inside a file and in the database; export sorts by it.
KEYS: dict[str, tuple[str, ...]] = {
    "subscribers": ("subscriber_id",),
    "sims": ("iccid",),
    "lines": ("msisdn",),
    "sim_changes": ("msisdn", "changed_at", "new_iccid"),
    "locks": ("msisdn",),
    "stock": ("iccid",),
}
TIME_COLUMNS = frozenset({"created_at", "changed_at", "locked_at"})
SECRET_COLUMNS = frozenset({"ki", "opc"})  # SIM keys: files only, with --include-keys
CLEAR_SECRET_COLUMNS = frozenset({"pin", "password"})  # import only, hashed on import
BRAND_FIELDS = ("id", "name", "country", "currency", "language", "timezone")

SUBSCRIBER_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")
ARGON2ID_PHC = re.compile(
    r"\$argon2id\$v=19\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+"
)


def kind_name(raw: str) -> str:
    """``sim-changes`` and ``sim_changes`` are the same kind; anything unknown is refused."""
    kind = raw.strip().lower().replace("-", "_")
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown kind {raw!r}; one of {', '.join(KINDS)}", code="ONBOARDING_KIND"
        )
    return kind


def export_columns(kind: str, *, include_keys: bool = False) -> tuple[str, ...]:
    """The header export writes: never clear PIN/password, SIM keys only when asked."""
    drop = CLEAR_SECRET_COLUMNS | (frozenset() if include_keys else SECRET_COLUMNS)
    return tuple(c for c in COLUMNS[kind] if c not in drop)


def file_format(path: Path) -> str:
    """``csv``, ``jsonl``, ``toml`` or ``yaml``, from the file extension."""
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".jsonl": "jsonl", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
    if suffix not in formats:
        raise InvalidInput(
            f"{path.name}: unknown file type; use .csv, .jsonl, .toml or .yaml",
            code="ONBOARDING_FORMAT",
        )
    return formats[suffix]


def format_time(value: dt.datetime) -> str:
    """UTC ISO 8601 with its zone, to the second or microsecond as stored."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC).isoformat()


def parse_time(raw: str) -> dt.datetime:
    """An ISO 8601 time that must carry its zone (``Z`` or an offset)."""
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput("not an ISO 8601 time", code="ONBOARDING_TIME") from None
    if value.tzinfo is None:
        raise InvalidInput("time has no zone; add Z or an offset", code="ONBOARDING_TIME")
    return value


# ---------------------------------------------------------------- row files


class RowWriter:
    """Writes rows (mappings of column -> str | None) as CSV or JSON Lines.

    CSV gets the header ``columns``; ``None`` or ``""`` is written as an empty
    cell, and left out of a JSON object. Use as a context manager.
    """

    def __init__(self, path: Path, columns: Sequence[str], *, fmt: str | None = None) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.format = fmt or file_format(path)
        if self.format not in ("csv", "jsonl"):
            raise InvalidInput(f"{path.name}: rows go to .csv or .jsonl", code="ONBOARDING_FORMAT")
        self.count = 0
        self._fh: IO[str] = path.open("w", newline="", encoding="utf-8", buffering=1 << 20)
        self._csv = csv.writer(self._fh, lineterminator="\n")
        if self.format == "csv":
            self._csv.writerow(self.columns)

    def write(self, row: Mapping[str, str | None]) -> None:
        if self.format == "csv":
            self._csv.writerow([row.get(c) or "" for c in self.columns])
        else:
            obj = {c: row[c] for c in self.columns if row.get(c)}
            self._fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.count += 1

    def write_values(self, values: Sequence[str | None]) -> None:
        """One row as values in ``columns`` order (the fast path for bulk writers)."""
        if self.format == "csv":
            self._csv.writerow(values)  # the csv module writes None as an empty cell
        else:
            self.write(dict(zip(self.columns, values, strict=True)))
            return
        self.count += 1

    def write_csv_cells(self, cells: Sequence[str | None]) -> None:
        """A CSV row whose cells the caller has already quoted where needed (fast path)."""
        self._fh.write(",".join([c or "" for c in cells]) + "\n")
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream (line number, row) from a CSV or JSON Lines file; absent values are ``""``.

    Line numbers are the file's own (the CSV header is line 1). Cells are
    stripped. A JSON line that is not a JSON object raises :class:`InvalidInput`
    naming the line (callers that report bad rows and go on should catch it).
    """
    fmt = file_format(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            for n, row in enumerate(reader, start=2):
                yield n, {k: (v or "").strip() for k, v in row.items() if k}
        elif fmt == "jsonl":
            for n, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except ValueError:
                    obj = None
                if not isinstance(obj, dict):
                    raise InvalidInput(f"{path.name}:{n}: not a JSON object")
                yield n, {k: "" if v is None else str(v).strip() for k, v in obj.items()}
        else:
            raise InvalidInput(f"{path.name}: rows come from .csv or .jsonl")


# ---------------------------------------------------------------- brands files

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    # JSON strings are valid TOML basic strings (json.dumps never emits "\/").
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML export of a non-finite float")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def brands_toml(brands: Sequence[Mapping[str, Any]]) -> str:
    """``[[brand]]`` tables with a ``[brand.policy]`` each, keys in a stable order."""
    out = ["# resim brands and their policies (see docs/export-and-demo-data.md)."]
    for brand in brands:
        out.append("")
        out.append("[[brand]]")
        out.extend(f"{k} = {_toml_value(brand[k])}" for k in BRAND_FIELDS)
        out.append("")
        out.append("[brand.policy]")
        policy = brand.get("policy") or {}
        # TOML has no null: a field that is None (e.g. camara_monitored_days,
        # "unlimited") is left out, and reads back as its default, None.
        out.extend(
            f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(policy.items()) if v is not None
        )
    return "\n".join(out) + "\n"


def _policy(brand: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted((brand.get("policy") or {}).items()))


def brands_yaml(brands: Sequence[Mapping[str, Any]]) -> str:
    """The same structure as :func:`brands_toml`, as YAML (top-level ``brand:`` list)."""
    import yaml

    doc = {
        "brand": [
            {
                **{k: b[k] for k in BRAND_FIELDS},
                # like TOML: a None field is left out (it reads back as None)
                "policy": {
                    k: v for k, v in sorted((b.get("policy") or {}).items()) if v is not None
                },
            }
            for b in brands
        ]
    }
    text: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None)
    return text
