"""The crash test's API: a ``resim serve`` process that can be SIGKILLed mid-install.

The SM-DP+ emulator delivers handleDownloadProgressInfo to this API, retrying a
few times over a few seconds (like a real SM-DP+, it then gives up). The
:class:`ApiKiller` takes the API away for ``outage_s`` (10 s, as in issue 13
finding 6) while phones are installing, so some install callbacks are lost for
good; the reconcile job (``services/provisioning/reconcile.py``) must complete those
requests all the same.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx


def serve_command(port: int) -> list[str]:
    """``resim serve`` from this interpreter's environment."""
    script = shutil.which("resim", path=str(Path(sys.executable).parent))
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if script:
        return [script, *args]
    return [sys.executable, "-c", "from resim.entrypoints.cli import main; main()", *args]


class ApiProcess:
    """The API on a fixed loopback port (the emulator's callback URL names it)."""

    def __init__(self, env: dict[str, str], port: int, log_dir: Path) -> None:
        self.env, self.port, self.log_dir = env, port, log_dir
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        self._log = open(self.log_dir / f"api-{self.starts:02d}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            serve_command(self.port), env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"resim serve exited; see {self.log_dir}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"resim serve did not answer within {timeout}s; see {self.log_dir}")

    def _end(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)


class ApiKiller(threading.Thread):
    """SIGKILL the API for ``outage_s``, ``outages`` times, while phones install.

    An outage starts once ``busy()`` says installs are going on (phones have
    ready eSIMs to install); the API comes back after ``outage_s`` and the next
    outage waits ``gap_s``. ``down_s`` records each outage's real length.
    When ``lost()`` is given, an outage lasts on past ``outage_s`` (up to three
    times as long) until it has grown: a busy second test worker beside this
    one can slow the phones so much that no callback falls into ten seconds.
    """

    def __init__(
        self,
        api: ApiProcess,
        busy: Callable[[], bool],
        *,
        outages: int = 2,
        outage_s: float = 10.0,
        gap_s: float = 8.0,
        give_up_at: float,
        lost: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(name="crash-api-killer", daemon=True)
        self.api, self.busy = api, busy
        self.outages, self.outage_s, self.gap_s, self.give_up_at = (
            outages,
            outage_s,
            gap_s,
            give_up_at,
        )
        self.lost = lost
        self.down_s: list[float] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            for n in range(self.outages):
                if n:
                    self._halt.wait(self.gap_s)
                while not self.busy() and time.monotonic() < self.give_up_at:
                    if self._halt.wait(0.2):
                        return
                if self._halt.is_set() or time.monotonic() >= self.give_up_at:
                    return
                began = time.monotonic()
                lost_before = self.lost() if self.lost else 0
                self.api.kill()
                self._halt.wait(self.outage_s)
                longest = began + self.outage_s * 3
                while (
                    self.lost is not None
                    and self.lost() == lost_before
                    and time.monotonic() < longest
                    and not self._halt.wait(0.2)
                ):
                    pass
                self.api.start()
                self.down_s.append(round(time.monotonic() - began, 1))
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            if self.api.proc is None:
                try:
                    self.api.start()
                except BaseException as exc:
                    self.error = self.error or exc
