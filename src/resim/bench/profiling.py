"""Optional sampling profiles of the API and worker processes with py-spy.

With ``--profile DIR`` and ``py-spy`` on PATH (``pip install py-spy``; it
needs ptrace rights, as root or with CAP_SYS_PTRACE), each process is
sampled for the whole run with ``--gil`` (only the thread holding the GIL:
where the Python CPU goes) or, with ``--profile-wall``, every thread
including idle ones (where the threads wait), and written as collapsed stacks
(``DIR/<role>.txt``, one ``frame;frame;... count`` per line), which
flamegraph tools read. :func:`top_frames` condenses one into the functions
with the largest share of samples anywhere on the stack.

Without py-spy, ``--cprofile DIR`` runs every role process (API, workers,
emulator) under cProfile in all its threads (:class:`ThreadProfiles`) and
writes ``DIR/<role>.pstats`` when it stops (times are each thread's CPU
time); :func:`cprofile_top` lists the functions with the most CPU of their
own. cProfile slows the processes down, so the CPU figures of such a run are
not the ones to report.
"""

from __future__ import annotations

import cProfile
import pstats
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")


class Profilers:
    def __init__(self, directory: Path, *, wall: bool = False) -> None:
        self.directory = directory
        self.wall = wall
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.available = shutil.which("py-spy") is not None

    def start(self, name: str, pid: int) -> None:
        if not self.available:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        out = self.directory / f"{name}.txt"
        mode = ["--idle"] if self.wall else ["--gil"]
        cmd = ["py-spy", "record", *mode, "--format", "raw", "-p", str(pid), "-o", str(out)]
        self._running.append(
            (name, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        )

    def stop(self) -> list[Path]:
        """Ask each py-spy to write its file (SIGINT) and wait for it."""
        done = []
        for name, process in self._running:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            path = self.directory / f"{name}.txt"
            if path.exists():
                done.append(path)
        self._running = []
        return done


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({file})"


def top_frames(path: Path, limit: int = 25) -> tuple[int, list[tuple[str, float]]]:
    """(samples, [(function, share of samples with it on the stack)]) from a raw profile."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in {_short(f) for f in stack.split(";")}:
            inclusive[frame] += n
    if not total:
        return 0, []
    return total, [(f, c / total) for f, c in inclusive.most_common(limit)]


class ThreadProfiles:
    """cProfile in every thread of this process (``--cprofile``: no py-spy needed).

    cProfile sees only the thread that enabled it; :meth:`start` enables one in
    the calling thread and, through ``threading.setprofile``, in every thread
    started afterwards (the API's thread pool, the worker's job threads).
    :meth:`dump` merges them into one ``pstats`` file. The profiled process runs
    slower (every call is counted), so use it to see where CPU goes, not to
    measure how much.
    """

    def __init__(self) -> None:
        self._profiles: list[tuple[int, cProfile.Profile]] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.setprofile(self._first_event)
        self._enable_here()

    def _first_event(self, *_args: object) -> None:
        sys.setprofile(None)  # replaced by this thread's own profiler
        self._enable_here()

    def _enable_here(self) -> None:
        # The thread's CPU clock: time spent waiting (locks, queues, sockets) is not
        # counted, so the figures say where the CPU goes, as py-spy --gil does.
        profile = cProfile.Profile(time.thread_time)
        with self._lock:
            self._profiles.append((threading.get_ident(), profile))
        profile.enable()

    def dump(self, path: Path) -> None:
        """Merge every thread's completed calls into a pstats file at ``path``.

        Only this thread's profiler is disabled: disabling another thread's would
        close its unfinished calls with this thread's clock (nonsense); the calls
        still running elsewhere are simply left out.
        """
        threading.setprofile(None)
        with self._lock:
            profiles = list(self._profiles)
        here = threading.get_ident()
        merged: pstats.Stats | None = None
        for ident, profile in profiles:
            if ident == here:
                profile.disable()
            profile.snapshot_stats()  # completed calls only; does not disable
            snap: Any = _Snapshot(getattr(profile, "stats", {}))
            if merged is None:
                merged = pstats.Stats(snap)
            else:
                merged.add(snap)
        if merged is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            merged.dump_stats(str(path))


class _Snapshot:
    """What pstats.Stats reads from a profile, without it disabling the profile."""

    def __init__(self, stats: dict[object, object]) -> None:
        self.stats = stats

    def create_stats(self) -> None:
        pass


def cprofile_top(path: Path, limit: int = 15) -> tuple[float, list[tuple[str, float, float]]]:
    """(total self seconds, [(function, self share, cumulative share)]) of a pstats
    file: the functions where the CPU is spent (self time), largest first."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:limit]
    out = []
    for (file, line, func), (_cc, _nc, tottime, cumtime, _callers) in rows:
        out.append((_short(f"{func} ({file}:{line})"), tottime / total, min(cumtime / total, 1.0)))
    return total, out
