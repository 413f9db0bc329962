"""CPU time of processes and of the machine, read from Linux ``/proc``.

``CpuProbe.snapshot()`` records user+system seconds for each named group of
processes (the API, the worker(s), the emulator, PostgreSQL's server
processes, this process) and the machine's busy time; the difference of two
snapshots is what each group spent in between. A PostgreSQL backend that
starts in the window counts from zero; one that ends in it is lost (the
connection pools keep theirs for the whole run). Elsewhere than Linux every
figure is zero.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its threads (0 if gone)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def pids_named(comm: str) -> list[int]:
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else []:
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot, over all cores."""
    try:
        first = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    ticks = [int(x) for x in first]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    total = sum(ticks[:8])
    return (total - idle) / _TICK, total / _TICK


@dataclass(frozen=True)
class Snapshot:
    groups: dict[str, dict[int, float]]
    busy: float
    total: float


class CpuProbe:
    """Groups of processes by name; each group is a function returning its pids."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self._groups = groups

    def snapshot(self) -> Snapshot:
        busy, total = machine_cpu_seconds()
        return Snapshot(
            groups={
                name: {pid: process_cpu_seconds(pid) for pid in pids()}
                for name, pids in self._groups.items()
            },
            busy=busy,
            total=total,
        )


@dataclass(frozen=True)
class CpuUse:
    by_group: dict[str, float]  # CPU seconds per group in the window
    machine_busy: float  # CPU seconds, all cores
    machine_total: float  # core-seconds available in the window

    @property
    def utilisation(self) -> float:
        return self.machine_busy / self.machine_total if self.machine_total else 0.0

    @property
    def cores(self) -> int:
        """The cores this machine gives its processes (the CPU budget's base)."""
        return machine_cores()


def machine_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_between(before: Snapshot, after: Snapshot) -> CpuUse:
    by_group = {}
    for name, now in after.groups.items():
        then = before.groups.get(name, {})
        by_group[name] = sum(max(0.0, cpu - then.get(pid, 0.0)) for pid, cpu in now.items())
    return CpuUse(by_group, after.busy - before.busy, after.total - before.total)


def machine_description() -> str:
    """``nproc`` and the CPU model, e.g. ``2 x Intel(R) Xeon(R) Processor``."""
    model = platform.processor() or platform.machine()
    try:
        for text in (_PROC / "cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        cores = str(os.cpu_count())
    return f"{cores.strip()} x {model}, Python {platform.python_version()}"
