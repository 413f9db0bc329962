"""What an import did: counts per outcome and every row it did not write.

Outcomes of a row: ``written`` (new, stored), ``unchanged`` (its key is in the
database with the same content: a re-run), ``rejected`` (a rule failed; one
:class:`RowError` per failing field), ``conflict`` (its key is in the database
with different content; not written). Reasons never contain a cell's value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

REJECTED = "rejected"
CONFLICT = "conflict"
KEPT_IN_MEMORY = 1000  # errors beyond this go to the CSV report only


class ErrorSink(Protocol):
    def write(self, kind: str, error: RowError) -> None: ...


@dataclass(frozen=True)
class RowError:
    line: int  # line in the file (CSV: header is line 1); brands: entry number
    field: str
    reason: str
    outcome: str = REJECTED
    # a reference (brand, subscriber, SIM, line) that is not in the database
    unresolved: bool = False


@dataclass
class ImportReport:
    kind: str
    source: str
    read: int = 0
    new: int = 0  # found new by the check (written unless dry run or held back)
    written: int = 0
    unchanged: int = 0
    rejected: int = 0
    conflict: int = 0
    dry_run: bool = False
    held_back: bool = False  # --strict with bad rows: nothing written
    errors: list[RowError] = field(default_factory=list)
    errors_total: int = 0
    unresolved: int = 0  # rows rejected only for a reference not in the database
    _sink: ErrorSink | None = None

    def add(self, error: RowError) -> None:
        self.errors_total += 1
        if error.unresolved:
            self.unresolved += 1
        if len(self.errors) < KEPT_IN_MEMORY:
            self.errors.append(error)
        if self._sink is not None:
            self._sink.write(self.kind, error)

    @property
    def bad(self) -> int:
        return self.rejected + self.conflict

    def summary(self) -> str:
        mode = f" (dry run: {self.new} would be written)" if self.dry_run else ""
        if self.held_back:
            mode = f" (strict: {self.new} held back because of bad rows)"
        return (
            f"{self.kind}: {self.read} read, {self.written} written, {self.unchanged} unchanged,"
            f" {self.rejected} rejected, {self.conflict} conflicts{mode}"
        )

    def reference_hint(self) -> str | None:
        """For a one-file import: why references may be missing, and what to run instead."""
        if not self.unresolved:
            return None
        return (
            f"note: {self.unresolved} rejected cells refer to a brand, subscriber, SIM or line "
            "that is not in the database. Importing one file checks it against the database "
            "only, not against the other files: check the files together with "
            "`resim import all DIR --dry-run` (brands, subscribers, sims, lines, sim_changes, "
            "locks, stock, each seeing the rows of the ones before), or import them in that "
            "order."
        )


class ReportSink:
    """The report as CSV: kind,line,field,outcome,reason (one row per error)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(["kind", "line", "field", "outcome", "reason"])

    def write(self, kind: str, error: RowError) -> None:
        self._csv.writerow([kind, error.line, error.field, error.outcome, error.reason])

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ReportSink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
