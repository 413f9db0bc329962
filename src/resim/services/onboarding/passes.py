"""The two passes of an import of one file: check every row (1), write the new ones (2).

Pass 1 (:func:`check`) streams the file, parses each row (pure), drops
in-file duplicates of the kind's unique keys (:class:`SeenKeys`, on disk),
and classifies each batch against the database with the store's read-only
view: new, unchanged (same key, same content) or an error. It counts outcomes
in the report and hands each batch's new records to ``on_new``, in file
order. It never writes to resim's database, so it may run in another process
while pass 2 writes the batches it found earlier (:mod:`.pipeline`).

Pass 2 (:func:`write_batch`) writes records in batches of ``batch_size``,
each batch in its own transaction, committed before the next: a run killed
at any point has committed whole batches only, and a re-run finds them
``unchanged`` in pass 1 and writes the rest.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import IO

from resim.services.context import ServiceContext
from resim.services.onboarding.base import NEW, Cells, Env, Kind, Rec
from resim.services.onboarding.ports import ImportStore
from resim.services.onboarding.report import ImportReport, RowError
from resim.services.onboarding.seen import SeenKeys
from resim.services.onboarding.source import RowSource

# Rows per transaction. Each commit writes every index page the batch touched;
# keys in random order (numbers) touch most leaf pages whatever the batch
# size, so larger batches write each page fewer times. 20,000 new records
# are about 20 MB in each process.
BATCH = 20_000
DUPLICATE = "duplicate of an earlier row in this file"


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


def check(
    store: ImportStore,
    kind: Kind,
    source: RowSource,
    report: ImportReport,
    env: Env,
    on_new: Callable[[list[Rec]], None],
    tick: Callable[[int, int], None],
    batch_size: int = BATCH,
) -> None:
    """Pass 1: read-only. Counts rejected/conflict/unchanged/new; ``on_new`` gets new records.

    ``on_new`` is called once per classified batch (possibly with an empty
    list), after the report counts that batch; ``tick(rows read, byte
    position)`` every 1,000 rows.
    """
    seen = SeenKeys()
    rows: list[tuple[int, Rec | None, list[RowError]]] = []  # this batch, in file order
    parsed = 0

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
        with store.reading() as reads:
            verdicts = kind.classify(reads, batch, env)
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
        on_new(new)

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
                tick(report.read, source.position)
        flush()
    finally:
        seen.close()


def write_batch(
    ctx: ServiceContext,
    store: ImportStore,
    kind: Kind,
    recs: Sequence[Rec],
    env: Env,
    batch_size: int = BATCH,
) -> None:
    """Pass 2 for some new records: each ``batch_size`` of them in its own transaction.

    Each batch's ``before_write`` (the core network's bindings, committed in
    the core's own transaction) ends before the batch commits, so a crash
    leaves the core ahead of resim, never behind; the re-run finds those
    bindings made. When the two do not depend on each other
    (``kind.effects_apart``), the store lets a second connection write while
    the batch's transaction is open (``store.parallel_writes``: PostgreSQL)
    and the core network does not queue its writes behind resim's (the
    built-in one on SQLite does: ``serialised_writes``), ``before_write`` runs
    on a second thread while ``write`` runs: the database works on both at
    once (on PostgreSQL the core's inserts and look-ups were about a third
    of the server's work for ``lines``). The batch still commits only once
    ``before_write`` has returned; its error rolls the batch back.
    """
    apart = (
        kind.effects_apart
        and store.parallel_writes
        and not getattr(ctx.core, "serialised_writes", False)
    )
    if not apart:
        for at in range(0, len(recs), batch_size):
            part = recs[at : at + batch_size]
            kind.before_write(ctx, store, part, env)
            with store.writing() as writes:
                kind.write(ctx, writes, part, env)
        return
    with futures.ThreadPoolExecutor(1, thread_name_prefix="resim-import-effects") as pool:
        for at in range(0, len(recs), batch_size):
            part = recs[at : at + batch_size]
            effects = pool.submit(kind.before_write, ctx, store, part, env)
            try:
                with store.writing() as writes:
                    kind.write(ctx, writes, part, env)
                    effects.result()  # before the commit; its error rolls the batch back
            finally:
                futures.wait([effects])  # never left running past this batch


def open_source(kind: Kind, path: Path) -> RowSource:
    return RowSource(path, columns=kind.columns, required=kind.required)
