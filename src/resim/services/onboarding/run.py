"""The two-pass import: validate every row (pass 1), then write (pass 2).

Pass 1 streams the file, parses each row (pure), drops in-file duplicates of
the kind's unique keys (a set of compact keys: about 60 bytes a row), and
classifies each batch against the database in one read-only unit of work:
new, unchanged (same key, same content) or an error. New records are spooled
to a temporary file (pickled batches), never kept in memory.

Pass 2 reads the spool back and writes it in batches of ``batch_size``
records, each batch in its own unit of work, committed before the next: a run
killed at any point has committed whole batches only, and a re-run finds them
``unchanged`` in pass 1 and writes the rest. Nothing is written on a dry run,
nor with ``strict`` when pass 1 found a bad row.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import structlog

from resim.errors import InvalidInput
from resim.services import formats
from resim.services.context import ServiceContext
from resim.services.onboarding import brands as brand_files
from resim.services.onboarding.base import NEW, Cells, Env, Kind, Pending, Rec, load_env
from resim.services.onboarding.history import Locks, SimChanges
from resim.services.onboarding.lines import Lines
from resim.services.onboarding.progress import NoProgress, Progress
from resim.services.onboarding.report import ImportReport, ReportSink, RowError
from resim.services.onboarding.seen import SeenKeys
from resim.services.onboarding.sims import Sims, Stock
from resim.services.onboarding.source import RowSource
from resim.services.onboarding.subscribers import Subscribers

log = structlog.get_logger()
BATCH = 5000
DUPLICATE = "duplicate of an earlier row in this file"
KINDS: dict[str, Kind] = {
    k.name: k for k in (Subscribers(), Sims(), Lines(), SimChanges(), Locks(), Stock())
}
ORDER = formats.KINDS  # import order (services/formats.py)


@contextlib.contextmanager
def _rare_gc() -> Iterator[None]:
    """No cyclic-GC passes while importing (the previous state is restored after).

    Each row allocates a few dicts and tuples; with the default thresholds the
    collector ran every 700 allocations and took a fifth of the import's CPU
    (py-spy). Rows form no reference cycles, so reference counting frees them
    anyway and memory stays flat; the little cyclic garbage a unit of work
    leaves is collected once the import returns.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Spool:
    """New records of pass 1, pickled batch by batch into an anonymous temp file."""

    def __init__(self) -> None:
        self._fh: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.count = 0

    def add(self, batch: list[Rec]) -> None:
        if batch:
            pickle.dump(batch, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(batch)

    def batches(self) -> Iterator[list[Rec]]:
        self._fh.seek(0)
        while True:
            try:
                yield pickle.load(self._fh)  # noqa: S301 (our own file, written above)
            except EOFError:
                return

    def close(self) -> None:
        self._fh.close()


def validate(
    ctx: ServiceContext,
    kind: Kind,
    path: Path,
    report: ImportReport,
    env: Env,
    progress: Progress,
    batch_size: int = BATCH,
) -> Spool:
    """Pass 1: read-only. Counts rejected/conflict/unchanged; returns the new records."""
    source = RowSource(path, columns=kind.columns, required=kind.required)
    seen = SeenKeys()
    spool = Spool()
    rows: list[tuple[int, Rec | None, list[RowError]]] = []  # this batch, in file order
    parsed = 0
    progress.start(kind.name, "checking", source.size)

    def flush() -> None:
        """Duplicates in the file, then the database check, for the rows read so far."""
        recs = [rec for _, rec, _ in rows if rec is not None]
        duplicates = iter(seen.first_seen([kind.keys(rec) for rec in recs]))
        batch: list[Rec] = []
        for line, rec, errors in rows:  # reported in file order
            if rec is not None and (name := next(duplicates)) is not None:
                rec, errors = None, [RowError(line, name, DUPLICATE)]
            if rec is None:
                report.rejected += 1
                for error in errors:
                    report.add(error)
            else:
                batch.append(rec)
        rows.clear()
        if batch:
            classify(batch)

    def classify(batch: list[Rec]) -> None:
        with ctx.uow() as uow:
            verdicts = kind.classify(uow, batch, env)
        new = []
        for rec, verdict in zip(batch, verdicts, strict=True):
            if verdict is NEW:
                new.append(rec)
                report.new += 1
            elif verdict is False:
                report.unchanged += 1
            else:
                assert isinstance(verdict, RowError)
                report.add(verdict)
                if verdict.outcome == "conflict":
                    report.conflict += 1
                else:
                    report.rejected += 1
        if env.pending is not None:
            kind.remember(new, env.pending)
        spool.add(new)

    try:
        for row in source:
            report.read += 1
            if row.problem is not None:
                rows.append((row.line, None, [RowError(row.line, "-", row.problem)]))
            else:
                cells = Cells(row.line, row.cells)
                rec = kind.parse(cells, env)
                rows.append((row.line, rec, cells.errors))
                parsed += rec is not None
            if parsed >= batch_size or len(rows) >= 4 * batch_size:
                flush()
                parsed = 0
            if report.read % 1000 == 0:
                progress.update(report.read, source.position)
        flush()
    except BaseException:
        spool.close()
        raise
    finally:
        seen.close()
    progress.update(report.read, source.size)
    progress.finish()
    return spool


def write(
    ctx: ServiceContext,
    kind: Kind,
    spool: Spool,
    report: ImportReport,
    env: Env,
    progress: Progress,
    batch_size: int = BATCH,
) -> None:
    """Pass 2: each batch of new records in its own committed unit of work."""
    progress.start(kind.name, "writing", spool.count)
    done = 0
    for chunk in spool.batches():
        for at in range(0, len(chunk), batch_size):
            part = chunk[at : at + batch_size]
            kind.before_write(ctx, part, env)
            with ctx.uow() as uow:
                kind.write(ctx, uow, part, env)
                uow.commit()
            done += len(part)
            report.written += len(part)
            progress.update(done, done)
    progress.finish()


def _check_kind(kind: str) -> str:
    name = kind.replace("-", "_")
    if name not in ORDER:
        raise InvalidInput(f"unknown kind {kind!r}; one of: {', '.join(ORDER)}", code="IMPORT_KIND")
    return name


def import_file(
    ctx: ServiceContext,
    kind: str,
    path: Path,
    *,
    dry_run: bool = False,
    strict: bool = False,
    report_path: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import one file of ``kind``; the report (and ``report_path`` CSV) names bad rows.

    Raises InvalidInput (a usage error) for an unknown kind or format, a
    missing file or a CSV header without the required columns.
    """
    with _rare_gc():
        return _import_file(
            ctx,
            kind,
            path,
            dry_run=dry_run,
            strict=strict,
            report_path=report_path,
            progress=progress,
            batch_size=batch_size,
        )


def _import_file(
    ctx: ServiceContext,
    kind: str,
    path: Path,
    *,
    dry_run: bool,
    strict: bool,
    report_path: Path | None,
    progress: Progress | None,
    batch_size: int,
) -> ImportReport:
    name = _check_kind(kind)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", code="IMPORT_FILE")
    sink = ReportSink(report_path) if report_path is not None else None
    report = ImportReport(name, str(path), dry_run=dry_run, _sink=sink)
    try:
        if name == "brands":
            brand_files.import_brands(ctx, path, report, dry_run=dry_run, strict=strict)
            return report
        kind_obj = KINDS[name]
        env = load_env(ctx)
        prog = progress or NoProgress()
        spool = validate(ctx, kind_obj, path, report, env, prog, batch_size)
        try:
            if dry_run:
                return report
            if strict and report.bad:
                report.held_back = True
                return report
            write(ctx, kind_obj, spool, report, env, prog, batch_size)
        finally:
            spool.close()
    finally:
        if sink is not None:
            sink.close()
        log.info(
            "import.done",
            kind=name,
            read=report.read,
            written=report.written,
            unchanged=report.unchanged,
            rejected=report.rejected,
            conflict=report.conflict,
            dry_run=dry_run,
        )
    return report


def files_in(directory: Path) -> list[tuple[str, Path]]:
    """The (kind, file) pairs ``import all`` finds in ``directory``, in import order."""
    found: list[tuple[str, Path]] = []
    for name in ORDER:
        exts = (".toml", ".yaml", ".yml") if name == "brands" else (".csv", ".jsonl")
        for ext in exts:
            candidate = directory / f"{name}{ext}"
            if candidate.is_file():
                found.append((name, candidate))
                break
    return found


def import_dir(
    ctx: ServiceContext,
    directory: Path,
    *,
    dry_run: bool = False,
    strict: bool = False,
    report_path: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> list[ImportReport]:
    """Every kind found in ``directory``, in order (brands, subscribers, ... stock).

    Without ``dry_run`` / ``strict``, each kind is checked and written before
    the next is checked. With either, every kind is checked first (later kinds
    resolve references to earlier kinds' new rows through :class:`Pending`),
    and with ``strict`` nothing at all is written if any file has a bad row.
    Brands are always written first unless ``dry_run``: later kinds need them.
    """
    if not directory.is_dir():
        raise InvalidInput(f"{directory}: not a directory", code="IMPORT_FILE")
    found = files_in(directory)
    if not found:
        raise InvalidInput(
            f"{directory}: no <kind>.csv/.jsonl or brands.toml/.yaml", code="IMPORT_FILE"
        )
    if not (dry_run or strict):
        return [  # import_file lowers GC passes itself
            import_file(ctx, k, p, report_path=_sub_report(report_path, k), progress=progress,
                        batch_size=batch_size)
            for k, p in found
        ]  # fmt: skip
    with _rare_gc():
        return _check_all_then_write(
            ctx,
            found,
            dry_run=dry_run,
            report_path=report_path,
            progress=progress,
            batch_size=batch_size,
        )


def _check_all_then_write(
    ctx: ServiceContext,
    found: list[tuple[str, Path]],
    *,
    dry_run: bool,
    report_path: Path | None,
    progress: Progress | None,
    batch_size: int,
) -> list[ImportReport]:
    """``import all`` with --dry-run or --strict: every kind checked before any is written."""
    reports: list[ImportReport] = []
    spools: list[tuple[Kind, Spool, ImportReport, Env]] = []
    pending = Pending()
    prog = progress or NoProgress()
    sinks: list[ReportSink] = []
    try:
        for name, path in found:
            sink_path = _sub_report(report_path, name)
            sink = ReportSink(sink_path) if sink_path is not None else None
            if sink is not None:
                sinks.append(sink)
            report = ImportReport(name, str(path), dry_run=dry_run, _sink=sink)
            reports.append(report)
            if name == "brands":  # written now unless dry run: later kinds need them
                brand_files.import_brands(ctx, path, report, dry_run=dry_run, strict=False,
                                          pending=pending)  # fmt: skip
                continue
            env = load_env(ctx, pending)
            kind = KINDS[name]
            spools.append((kind, validate(ctx, kind, path, report, env, prog, batch_size),
                           report, env))  # fmt: skip
        if dry_run:
            return reports
        if any(r.bad for r in reports):
            for r in reports:
                r.held_back = True
            return reports
        for kind, spool, report, env in spools:
            write(ctx, kind, spool, report, env, prog, batch_size)
        return reports
    finally:
        for _, spool, _, _ in spools:
            spool.close()
        for sink in sinks:
            sink.close()


def _sub_report(report_path: Path | None, kind: str) -> Path | None:
    """``import all --report R.csv`` writes one CSV per kind: R.<kind>.csv."""
    if report_path is None:
        return None
    return report_path.with_name(f"{report_path.stem}.{kind}{report_path.suffix or '.csv'}")


def explain(report: ImportReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "read": report.read,
        "written": report.written,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "conflict": report.conflict,
    }
