"""Run a throw-away osmo-hlr on loopback, for tests and local demos.

osmo-hlr 1.5 (Debian bookworm) cannot move its ports: GSUP listens on 4222
(``hlr / gsup / bind ip`` takes an address only) and CTRL on 4259
(``ctrl / bind`` takes an address only). 4222 is NATS's port and may be taken
on 127.0.0.1, so the daemon is bound to a private address of the loopback
range instead (Linux routes all of 127.0.0.0/8 to ``lo``), chosen so that its
GSUP, VTY and CTRL ports are free there. Nothing listens outside loopback.

The database and config live in ``workdir``; :meth:`OsmoHlrProcess.stop`
terminates the daemon (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

GSUP_PORT = 4222
VTY_PORT = 4258
CTRL_PORT = 4259

_CONFIG = """\
log stderr
 logging filter all 1
 logging color 0
 logging print category 1
 logging level main notice
 logging level db notice
line vty
 bind {host}
ctrl
 bind {host}
hlr
 gsup
  bind ip {host}
"""


@dataclass(frozen=True)
class OsmoHlrEndpoint:
    host: str
    ctrl_port: int = CTRL_PORT
    vty_port: int = VTY_PORT
    gsup_port: int = GSUP_PORT


def ports_free(host: str, ports: tuple[int, ...] = (GSUP_PORT, VTY_PORT, CTRL_PORT)) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def pick_loopback_host(rng: random.Random | None = None, tries: int = 50) -> str:
    """A 127.x.y.z address (not 127.0.0.1) where osmo-hlr's fixed ports are free."""
    rng = rng or random.Random()
    for _ in range(tries):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if ports_free(host):
            return host
    raise RuntimeError("no loopback address with ports 4222, 4258 and 4259 free")


class OsmoHlrProcess:
    """``with OsmoHlrProcess(tmpdir) as endpoint: ...`` starts and stops osmo-hlr."""

    def __init__(self, workdir: Path, *, binary: str = "osmo-hlr", host: str | None = None):
        self._workdir = workdir
        self._binary = binary
        self._host = host
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "osmo-hlr.log"

    def start(self, timeout: float = 15.0) -> OsmoHlrEndpoint:
        host = self._host or pick_loopback_host()
        config = self._workdir / "osmo-hlr.cfg"
        config.write_text(_CONFIG.format(host=host))
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [self._binary, "-c", str(config), "-l", str(self._workdir / "hlr.db")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
            )
        endpoint = OsmoHlrEndpoint(host=host)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"osmo-hlr exited at start-up:\n{self.log_tail()}")
            try:
                with socket.create_connection((host, CTRL_PORT), timeout=0.5):
                    return endpoint
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"osmo-hlr CTRL did not open within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> OsmoHlrEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
