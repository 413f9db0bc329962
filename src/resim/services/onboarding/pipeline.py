"""Both passes of one file at once, on two cores: a forked child checks, this process writes.

The child runs pass 1 (:func:`.passes.check`: read the file, parse, drop
in-file duplicates, classify against the database through the store's
read-only view) and sends each batch's new records, with the report's counts
and errors so far, through a pipe. This process writes each batch as it
arrives (:func:`.passes.write_batch`), so the child checks batch N+1 while
batch N is written. A pipe message is sent whole, so the child is at most one
batch ahead: memory stays flat.

Why that gives the same rows as checking everything first: pass 1 never
needs what this import writes. A key that repeats in the file is a duplicate
before any look-up (:class:`SeenKeys`), so no batch looks up a key that an
earlier batch of the same file wrote; what the kinds look up in other tables
(a line's subscriber and SIM, a change's line) comes from earlier files.

Only for a plain import (not ``--dry-run``, not ``--strict``: those check
every row before writing any) on a store that another process may open
(``ImportStore.shareable``) and where ``os.fork`` exists; otherwise the
caller checks then writes in one process.

Failures: a usage error in the child (a CSV header without a required
column) is raised here as the same ``InvalidInput``; any other error in the
child ends the import with ``ImportCheckFailed``; an error here kills the
child. The child asks the kernel to kill it when this process dies (Linux
``PR_SET_PDEATHSIG``), and a write to the pipe of a dead parent fails anyway.
Crash safety is that of pass 2: whole batches are committed, a re-run finds
them unchanged.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from resim.errors import InvalidInput, ResimError
from resim.services.context import ServiceContext
from resim.services.onboarding.base import Env, Kind, Rec
from resim.services.onboarding.passes import check, open_source, write_batch
from resim.services.onboarding.ports import ImportStore
from resim.services.onboarding.progress import Progress
from resim.services.onboarding.report import ImportReport, RowError

_Counts = tuple[int, int, int, int, int]  # read, new, unchanged, rejected, conflict


class ImportCheckFailed(ResimError):
    """The process that checks rows stopped with an unexpected error."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="IMPORT_CHECK_FAILED")


def available(store: ImportStore) -> bool:
    return store.shareable and hasattr(os, "fork") and sys.platform.startswith("linux")


def import_pipelined(
    ctx: ServiceContext,
    store: ImportStore,
    kind: Kind,
    path: Path,
    report: ImportReport,
    env: Env,
    progress: Progress,
    batch_size: int,
) -> None:
    """Check and write ``path``; counts and errors end up in ``report`` as with two passes."""
    size = path.stat().st_size
    mp = multiprocessing.get_context("fork")
    receiver, sender = mp.Pipe(duplex=False)
    child = mp.Process(
        target=_check_in_child,
        args=(receiver, sender, store, kind, path, env, batch_size),
        name=f"resim-import-check-{kind.name}",
        daemon=True,
    )
    child.start()
    sender.close()
    progress.start(kind.name, "importing", size)
    finished = False
    try:
        while not finished:
            try:
                message: tuple[Any, ...] = receiver.recv()
            except EOFError:
                raise ImportCheckFailed("the checking process ended without a word") from None
            tag = message[0]
            if tag == "usage":
                raise InvalidInput(message[1], code=message[2])
            if tag == "error":
                raise ImportCheckFailed(f"checking {kind.name} failed: {message[1]}")
            _, new, counts, errors, position = message
            _merge(report, counts, errors)
            if new:
                write_batch(ctx, store, kind, new, env, batch_size)
                report.written += len(new)
            progress.update(report.read, position)
            finished = tag == "done"
    finally:
        receiver.close()
        if not finished and child.is_alive():
            child.kill()
        child.join()
    progress.update(report.read, size)
    progress.finish()


def _merge(report: ImportReport, counts: _Counts, errors: list[RowError]) -> None:
    report.read, report.new, report.unchanged, report.rejected, report.conflict = counts
    for error in errors:
        report.add(error)


class _ErrorBuffer:
    """The child's report sink: errors kept until the next message carries them."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def write(self, kind: str, error: RowError) -> None:
        self.errors.append(error)

    def take(self) -> list[RowError]:
        taken, self.errors = self.errors, []
        return taken


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the broken pipe still ends the child
        pass


def _check_in_child(
    receiver: Connection,
    sender: Connection,
    store: ImportStore,
    kind: Kind,
    path: Path,
    env: Env,
    batch_size: int,
) -> None:
    receiver.close()  # the parent's end: with it closed here, a dead parent breaks the pipe
    _die_with_parent()
    if os.getppid() == 1:  # the parent died before the line above
        return
    buffer = _ErrorBuffer()
    report = ImportReport(kind.name, str(path), _sink=buffer)
    try:
        store.after_fork()
        source = open_source(kind, path)

        def counts() -> _Counts:
            return (report.read, report.new, report.unchanged, report.rejected, report.conflict)

        def on_new(new: list[Rec]) -> None:
            sender.send(("batch", new, counts(), buffer.take(), source.position))

        check(store, kind, source, report, env, on_new, lambda _r, _p: None, batch_size)
        sender.send(("done", [], counts(), buffer.take(), source.size))
    except InvalidInput as exc:
        sender.send(("usage", exc.message, exc.code))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone
    except Exception as exc:  # reported to the parent, which raises
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()
