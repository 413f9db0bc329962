"""``resim demo`` and ``make demo`` as a newcomer meets them (issue 14.6).

Real processes on free loopback ports, stopped at the end of each test:

* a port already taken stops the demo at once with one line naming the port
  and the flag that moves it (not a traceback after the install and seeding),
  and ``make demo`` says so before installing anything;
* ``make walkthrough`` gives every listener a free port;
* the running demo prints in-stock card ICCIDs per brand, explains the
  emulated phone (``POST /emulator/phone/install``), and has not used the
  printed reviewer's TOTP code: the first sign-in with the current code works.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from test_process_logs import resim_command

from resim.entrypoints import cli

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
PORTS = ("--api-port", "--smdp-port", "--smtp-port", "--sms-port")  # resim demo's listeners
ALL_FREE = ["--api-port", "0", "--smdp-port", "0", "--smtp-port", "0", "--sms-port", "0"]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def demo_env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESIM_DATA_DIR": str(data_dir),
        "RESIM_SECRET_KEYS": SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }


def port_flags() -> list[str]:
    """The flags of `resim demo` that choose a listener's port (from its signature)."""
    names = [p for p in inspect.signature(cli.demo).parameters if p.endswith("_port")]
    return ["--" + name.replace("_", "-") for name in names]


class TestATakenPort:
    @pytest.mark.parametrize("flag", list(PORTS))
    def test_stops_resim_demo_in_one_line_naming_port_and_flag(
        self, tmp_path: Path, taken_port: int, flag: str
    ) -> None:
        args = ["demo", "--lines-per-brand", "3", *ALL_FREE]
        args[args.index(flag) + 1] = str(taken_port)
        started = time.monotonic()
        done = subprocess.run(
            resim_command(*args),
            env=demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr[-2000:]
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr[-2000:]
        assert str(taken_port) in lines[0] and flag in lines[0] and "in use" in lines[0]
        assert "Traceback" not in done.stderr + done.stdout
        assert not (tmp_path / "demo").exists()  # nothing started, nothing written
        assert time.monotonic() - started < 60  # no seeding, no walkthrough first

    def test_stops_make_demo_before_anything_is_installed(self, taken_port: int) -> None:
        if shutil.which("make") is None:
            pytest.skip("make is not installed")
        # UV and BIN point nowhere: had make gone on to install or run, it would fail otherwise
        done = subprocess.run(
            ["make", "--no-print-directory", "-C", str(REPO), "demo",
             f"DEMO_ARGS=--api-port {taken_port}", "UV=/nonexistent/uv", "BIN=/nonexistent"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        output = (done.stdout + done.stderr).strip()
        assert done.returncode != 0
        assert len(output.splitlines()) == 1, output
        assert str(taken_port) in output and "--api-port" in output
        assert "/nonexistent" not in output  # stopped before the install and the demo


def test_make_walkthrough_gives_every_listener_a_free_port() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plan = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(REPO), "walkthrough", "UV=/bin/true"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    command = next(ln for ln in plan.splitlines() if "resim demo --walkthrough" in ln)
    flags = port_flags()
    assert set(flags) == set(PORTS)  # a new listener: add it here and to demo_ports.py
    for flag in flags:
        assert re.search(rf"{flag} 0\b", command), f"make walkthrough: {flag} not 0: {command}"


@pytest.fixture
def running_demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`resim demo` on free ports until it prints its help: (stdout so far, data dir)."""
    out = tmp_path / "stdout.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            resim_command("demo", "--lines-per-brand", "3", *ALL_FREE),
            env=demo_env(tmp_path),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while "Press Ctrl-C to stop." not in out.read_text():
            assert proc.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.5)
        yield out.read_text(), tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_running_demo_helps_and_leaves_the_reviewers_code_unused(
    running_demo: tuple[str, Path],
) -> None:
    text, _data_dir = running_demo
    api = re.search(r"customer portal\s+(http://127\.0\.0\.1:\d+)/portal", text)
    database = re.search(r"^database\s+(sqlite:///\S+)$", text, re.M)
    seed = re.search(r"demo-reviewer\s+password (\S+), TOTP seed ([A-Z2-7]+)", text)
    assert api and database and seed, text
    engine = sa.create_engine(database.group(1))
    try:
        with engine.connect() as db:
            # The start-up walkthrough approved with a reviewer of its own ...
            last_login = db.execute(
                sa.text("SELECT last_login_at FROM staff_user WHERE username = 'demo-reviewer'")
            ).scalar_one()
            assert last_login is None, "the demo signed in as demo-reviewer: its code is burnt"
            # ... so the printed reviewer signs in at once with the current code.
            signed_in = httpx.post(
                f"{api.group(1)}/v1/auth/staff/login",
                json={
                    "username": "demo-reviewer",
                    "password": seed.group(1).rstrip(","),
                    "totp": pyotp.TOTP(seed.group(2)).now(),
                },
                timeout=10,
            )
            assert signed_in.status_code == 200, signed_in.text

            # In-stock cards per brand, each one really a physical card in stock.
            brands = [b for (b,) in db.execute(sa.text("SELECT id FROM brand"))]
            assert len(brands) == 4
            help_start = text.index("Cards in stock for a hand-over")
            for brand in brands:
                shown = re.search(rf"^\s+{re.escape(brand)}\s+(\d{{19,20}}(?:, \d{{19,20}})*)$",
                                  text[help_start:], re.M)  # fmt: skip
                assert shown, f"no cards printed for {brand}"
                for iccid in shown.group(1).split(", "):
                    form, state, owner = db.execute(
                        sa.text("SELECT form, state, brand_id FROM sim WHERE iccid = :i"),
                        {"i": iccid},
                    ).one()
                    assert (form, state, owner) == ("physical", "in_stock", brand)
    finally:
        engine.dispose()
    # The emulated phone is explained, with the emulator's own address.
    emulator = re.search(r"SM-DP\+ emulator\s+(http://127\.0\.0\.1:\d+)/emulator/profiles", text)
    assert emulator, text
    assert f"curl -s -X POST {emulator.group(1)}/emulator/phone/install" in text
    assert '"activation_code": "<qr_payload>"' in text
    assert "Simulate the phone installing this eSIM" in text
    assert f"{api.group(1)}/redoc" in text


def test_the_port_check_knows_every_listener_and_its_default() -> None:
    from resim.entrypoints.demo_ports import PORTS as CHECKED  # runs before the install

    defaults = {
        "--" + name.replace("_", "-"): p.default
        for name, p in inspect.signature(cli.demo).parameters.items()
        if name.endswith("_port")
    }
    assert {flag: default for flag, (default, _what) in CHECKED.items()} == defaults
