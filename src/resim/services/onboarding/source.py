"""Rows of a CSV (header row) or JSON Lines file, streamed with their line numbers.

A row is a ``dict`` of column -> stripped text; an empty cell (or a JSON
``null`` / ``""``) is absent. The file is never read whole: memory does not
grow with its size. ``position`` is the byte offset read so far (for the ETA).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from resim.errors import InvalidInput


class Row(NamedTuple):  # a tuple: made once per row, cheaper than a frozen dataclass
    line: int
    cells: dict[str, str]
    problem: str | None = None  # the row could not be read at all (bad JSON)


def file_format(path: Path) -> str:
    """csv, jsonl, toml or yaml, from the extension (the usage error names the choices)."""
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".jsonl": "jsonl", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
    if suffix not in formats:
        raise InvalidInput(
            f"{path.name}: unknown format; use .csv, .jsonl, .toml or .yaml", code="IMPORT_FORMAT"
        )
    return formats[suffix]


class RowSource:
    """Iterate the rows of ``path``; ``columns`` are the names the kind accepts."""

    def __init__(self, path: Path, *, columns: tuple[str, ...], required: tuple[str, ...]):
        self.path = path
        self.columns = columns
        self.required = required
        self.format = file_format(path)
        if self.format not in ("csv", "jsonl"):
            raise InvalidInput(f"{path.name}: this kind takes .csv or .jsonl", code="IMPORT_FORMAT")
        self.size = path.stat().st_size
        self._raw: io.BufferedReader | None = None

    @property
    def position(self) -> int:
        return self._raw.tell() if self._raw is not None and not self._raw.closed else self.size

    def __iter__(self) -> Iterator[Row]:
        with self.path.open("rb") as raw:
            self._raw = raw
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            if self.format == "csv":
                yield from self._csv(text)
            else:
                yield from self._jsonl(text)

    def _csv(self, text: io.TextIOWrapper) -> Iterator[Row]:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip() for h in header]
        unknown = [n for n in names if n not in self.columns]
        missing = [c for c in self.required if c not in names]
        if unknown or missing:
            parts = []
            if missing:
                parts.append("missing columns: " + ", ".join(missing))
            if unknown:
                parts.append("unknown columns: " + ", ".join(unknown))
            raise InvalidInput(f"{self.path.name}: " + "; ".join(parts), code="IMPORT_COLUMNS")
        width = len(names)
        for values in reader:
            if not values:
                continue
            if len(values) != width:
                yield Row(reader.line_num, {}, f"has {len(values)} cells, the header {width}")
                continue
            stripped = map(str.strip, values)
            yield Row(reader.line_num, {n: v for n, v in zip(names, stripped, strict=True) if v})

    def _jsonl(self, text: io.TextIOWrapper) -> Iterator[Row]:
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                yield Row(number, {}, "not valid JSON")
                continue
            if not isinstance(obj, dict):
                yield Row(number, {}, "not a JSON object")
                continue
            unknown = [k for k in obj if k not in self.columns]
            if unknown:
                yield Row(number, {}, "unknown keys: " + ", ".join(sorted(unknown)[:5]))
                continue
            cells = {}
            for key, value in obj.items():
                if value is None or isinstance(value, (dict, list)):
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                value = str(value).strip()
                if value:
                    cells[key] = value
            yield Row(number, cells)
