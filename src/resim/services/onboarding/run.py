"""Importing files: each one checked (pass 1), and its new rows written (pass 2).

The passes are in :mod:`.passes`. A plain import of one file runs them at
once on two cores (:mod:`.pipeline`: a child process checks while this one
writes); ``--dry-run`` and ``--strict`` check every row of every file first,
in this process, and spool the new records to a temporary file (pickled
batches, never kept in memory) until the writing starts. Nothing is written on
a dry run, nor with ``strict`` when pass 1 found a bad row. The SQL is behind
``ctx.import_store`` (``ports.ImportStore``), which the composition root builds.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from resim.errors import InvalidInput
from resim.services.context import ServiceContext
from resim.services.onboarding import brands as brand_files
from resim.services.onboarding import formats, pipeline
from resim.services.onboarding.base import Env, Kind, Pending, load_env
from resim.services.onboarding.history import Locks, SimChanges
from resim.services.onboarding.lines import Lines
from resim.services.onboarding.passes import BATCH, Spool, check, open_source, write_batch
from resim.services.onboarding.ports import ImportStore
from resim.services.onboarding.progress import NoProgress, Progress
from resim.services.onboarding.report import ImportReport, ReportSink
from resim.services.onboarding.sims import Sims, Stock
from resim.services.onboarding.subscribers import Subscribers

log = structlog.get_logger()
KINDS: dict[str, Kind] = {
    k.name: k for k in (Subscribers(), Sims(), Lines(), SimChanges(), Locks(), Stock())
}
ORDER = formats.KINDS  # import order (services/onboarding/formats.py)


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


def _store(ctx: ServiceContext) -> ImportStore:
    if ctx.import_store is None:
        raise RuntimeError(
            "ServiceContext.import_store is not set (bootstrap.build_context sets it)"
        )
    return ctx.import_store


def validate(
    store: ImportStore,
    kind: Kind,
    path: Path,
    report: ImportReport,
    env: Env,
    progress: Progress,
    batch_size: int = BATCH,
) -> Spool:
    """Pass 1 of every row, in this process; returns the new records, spooled."""
    source = open_source(kind, path)
    spool = Spool()
    progress.start(kind.name, "checking", source.size)
    try:
        check(store, kind, source, report, env, spool.add, progress.update, batch_size)
    except BaseException:
        spool.close()
        raise
    progress.update(report.read, source.size)
    progress.finish()
    return spool


def write(
    ctx: ServiceContext,
    store: ImportStore,
    kind: Kind,
    spool: Spool,
    report: ImportReport,
    env: Env,
    progress: Progress,
    batch_size: int = BATCH,
) -> None:
    """Pass 2: each batch of new records in its own committed transaction."""
    progress.start(kind.name, "writing", spool.count)
    done = 0
    for chunk in spool.batches():
        for at in range(0, len(chunk), batch_size):
            part = chunk[at : at + batch_size]
            write_batch(ctx, store, kind, part, env, batch_size)
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
    pipelined: bool = True,
) -> ImportReport:
    """Import one file of ``kind``; the report (and ``report_path`` CSV) names bad rows.

    Raises InvalidInput (a usage error) for an unknown kind or format, a
    missing file or a CSV header without the required columns.
    ``pipelined=False`` checks every row before writing, in this process
    (the same outcome; slower, one core).
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
            pipelined=pipelined,
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
    pipelined: bool,
) -> ImportReport:
    name = _check_kind(kind)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", code="IMPORT_FILE")
    store = _store(ctx)
    sink = ReportSink(report_path) if report_path is not None else None
    report = ImportReport(name, str(path), dry_run=dry_run, _sink=sink)
    try:
        if name == "brands":
            brand_files.import_brands(store, path, report, dry_run=dry_run, strict=strict)
            return report
        kind_obj = KINDS[name]
        env = load_env(ctx, store)
        prog = progress or NoProgress()
        if not (dry_run or strict) and pipeline.available(store) and pipelined:
            pipeline.import_pipelined(ctx, store, kind_obj, path, report, env, prog, batch_size)
            return report
        spool = validate(store, kind_obj, path, report, env, prog, batch_size)
        try:
            if dry_run:
                return report
            if strict and report.bad:
                report.held_back = True
                return report
            write(ctx, store, kind_obj, spool, report, env, prog, batch_size)
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
    store = _store(ctx)
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
                brand_files.import_brands(store, path, report, dry_run=dry_run, strict=False,
                                          pending=pending)  # fmt: skip
                continue
            env = load_env(ctx, store, pending)
            kind = KINDS[name]
            spools.append((kind, validate(store, kind, path, report, env, prog, batch_size),
                           report, env))  # fmt: skip
        if dry_run:
            return reports
        if any(r.bad for r in reports):
            for r in reports:
                r.held_back = True
            return reports
        for kind, spool, report, env in spools:
            write(ctx, store, kind, spool, report, env, prog, batch_size)
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
