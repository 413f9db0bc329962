"""The system under test on loopback: API, worker(s) and SM-DP+ emulator as processes,
the mail and SMS sinks in this process.

The layout is production's: the API (``resim serve``) and each worker
(``resim worker``) are processes of their own, so each has its own GIL; the
SM-DP+ emulator is a third process, standing in for the peer. They are
started through :mod:`resim.bench.roles` with ``RESIM_*`` settings in their
environment. Mail goes over real SMTP to a
:class:`~resim.bench.sinks.MailSink` in this process (MailCapture's durable
files behind a lean SMTP server), which also tells the load driver about every
message it stores (the customer "reads" the one-time code and the "your eSIM
is ready" mail from it). Texts go over the SMS gateway's HTTP API to a
:class:`~resim.bench.sinks.SmsSink` (SmsCapture's answers and files, counting
what it stores): a bench without one sent every text to the default gateway
address, where nothing listened, and measured retries instead of replacements.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Role:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    stats: Path | None


class Stack:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent)."""

    def __init__(
        self,
        *,
        workdir: Path,
        env: dict[str, str],
        api_port: int,
        emulator_port: int,
        workers: int,
        concurrency: int,
        latency_ms: float,
        cprofile_dir: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.cprofile_dir = cprofile_dir
        self.env = env
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.emulator_url = f"http://127.0.0.1:{emulator_port}"
        self._api_port = api_port
        self._emulator_port = emulator_port
        self._workers = workers
        self._concurrency = concurrency
        self._latency_ms = latency_ms
        self.roles: list[Role] = []
        self.stats: dict[str, dict[str, Any]] = {}

    def _spawn(self, name: str, *args: str, stats: bool = False) -> Role:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        stats_path = self.workdir / f"{name}.stats.json" if stats else None
        cmd = [sys.executable, "-m", "resim.bench.roles", *args]
        if stats_path is not None:
            cmd += ["--stats", str(stats_path)]
        if self.cprofile_dir is not None:
            cmd += ["--cprofile", str(self.cprofile_dir / f"{name}.pstats")]
        process = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        role = Role(name, process, log, stats_path)
        self.roles.append(role)
        return role

    def start(self) -> None:
        self._spawn(
            "emulator",
            "emulator",
            "--port",
            str(self._emulator_port),
            "--latency-ms",
            str(self._latency_ms),
        )
        self._spawn("api", "api", "--port", str(self._api_port), stats=True)
        _wait_http(f"{self.emulator_url}/emulator/health", self.roles)
        _wait_http(f"{self.api_url}/health", self.roles)
        for n in range(self._workers):
            self._spawn(
                f"worker{n + 1}", "worker", "--concurrency", str(self._concurrency), stats=True
            )

    def pids(self, prefix: str) -> list[int]:
        return [r.process.pid for r in self.roles if r.name.startswith(prefix)]

    def stop(self) -> None:
        """SIGTERM the workers first (they finish running jobs), then the servers."""
        for group in ("worker", "api", "emulator"):
            live = [r for r in self.roles if r.name.startswith(group)]
            for role in live:
                if role.process.poll() is None:
                    role.process.send_signal(signal.SIGTERM)
            for role in live:
                try:
                    role.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    role.process.kill()
                    role.process.wait()
                role.log.close()
                if role.stats is not None and role.stats.exists():
                    self.stats[role.name] = json.loads(role.stats.read_text())
        self.roles = []

    def check_alive(self) -> None:
        for role in self.roles:
            code = role.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"{role.name} exited with {code}; see {self.workdir / role.name}.log"
                )


# Generous: on a machine shared with other test suites, importing a role's
# modules alone has taken over 30 s.
def _wait_http(url: str, roles: list[Role], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for role in roles:
            if role.process.poll() is not None:
                raise RuntimeError(f"{role.name} exited during start-up")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def role_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without RESIM_* variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIM_")}
    env.update(settings)
    return env
