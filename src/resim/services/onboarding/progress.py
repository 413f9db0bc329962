"""Progress of an import: a bar with rate and time left on a terminal, log lines otherwise.

Counted in rows (the rate) and bytes of the file (the time left).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Protocol

import structlog

log = structlog.get_logger()


class Progress(Protocol):
    def start(self, kind: str, phase: str, total_bytes: int) -> None: ...
    def update(self, rows: int, position: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, kind: str, phase: str, total_bytes: int) -> None:
        pass

    def update(self, rows: int, position: int) -> None:
        pass

    def finish(self) -> None:
        pass


class LogProgress:
    """One ``import.progress`` log event every ``every`` seconds, and one at the end."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._kind = self._phase = ""
        self._total = self._rows = self._pos = 0
        self._t0 = self._last = 0.0

    def start(self, kind: str, phase: str, total_bytes: int) -> None:
        self._kind, self._phase, self._total = kind, phase, total_bytes
        self._rows = self._pos = 0
        self._t0 = self._last = time.monotonic()

    def update(self, rows: int, position: int) -> None:
        self._rows, self._pos = rows, position
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._emit("import.progress", now)

    def finish(self) -> None:
        self._emit("import.phase_done", time.monotonic())

    def _emit(self, event: str, now: float) -> None:
        elapsed = max(now - self._t0, 1e-9)
        done = self._pos / self._total if self._total else 1.0
        left = elapsed * (1 - done) / done if done > 0 else None
        log.info(
            event,
            kind=self._kind,
            phase=self._phase,
            rows=self._rows,
            rows_per_s=round(self._rows / elapsed),
            percent=round(100 * done, 1),
            seconds_left=None if left is None else round(left),
        )


class BarProgress:
    """A rich progress bar on stderr: rows, rows/s, bytes done, time left."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]} rows, {task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: object = None
        self._t0 = 0.0

    def start(self, kind: str, phase: str, total_bytes: int) -> None:
        self._bar.start()
        self._t0 = time.monotonic()
        self._task = self._bar.add_task(f"{kind}: {phase}", total=total_bytes, rows=0, rate=0)

    def update(self, rows: int, position: int) -> None:
        rate = round(rows / max(time.monotonic() - self._t0, 1e-9))
        self._bar.update(self._task, completed=position, rows=rows, rate=rate)  # type: ignore[arg-type]

    def finish(self) -> None:
        task = self._task
        if task is not None:
            total = self._bar.tasks[-1].total or 0
            self._bar.update(task, completed=total)  # type: ignore[arg-type]
        self._bar.stop()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()


def for_terminal() -> Progress:
    """A bar when stderr is a terminal, log lines when it is a file or a pipe."""
    return BarProgress() if sys.stderr.isatty() else LogProgress()
