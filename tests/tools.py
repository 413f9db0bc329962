"""Outside programs some tests need, and what happens when one is missing.

A test that needs osmo-hlr, Chromium or PostgreSQL calls :func:`require`.
When the program is missing the test is skipped with a reason that starts
with :data:`MISSING`, so ``tests/conftest.py`` can end the run with one line
naming what did not run and how to install it. Under ``CI=true`` a missing
program is a failure instead: CI installs all of them (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

MISSING = "missing tool: "


@dataclass(frozen=True)
class Tool:
    name: str
    install: str


OSMO_HLR = Tool("osmo-hlr", "apt-get install osmo-hlr")
CHROMIUM = Tool("Chromium", "apt-get install chromium fonts-noto-cjk")
POSTGRESQL = Tool(
    "PostgreSQL",
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
)
TOOLS = (OSMO_HLR, CHROMIUM, POSTGRESQL)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(tool: Tool, detail: str) -> None:
    """Skip (or, under CI, fail) the current test because ``tool`` is not there."""
    reason = f"{MISSING}{tool.name}: {detail}"
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def osmo_hlr_binary() -> str:
    binary = shutil.which("osmo-hlr")
    if binary is None:
        missing(OSMO_HLR, "the osmo-hlr binary is not on PATH")
    assert binary is not None
    return binary


def require_chromium(path: Path) -> None:
    if not path.exists():
        missing(CHROMIUM, f"{path} is not there")


def summary(reasons: list[str]) -> str | None:
    """One line naming the tools that were missing, how many tests each cost,
    and the commands that install them; None when nothing was missing."""
    counts: dict[str, int] = {}
    for reason in reasons:
        at = reason.find(MISSING)
        if at < 0:
            continue
        name = reason[at + len(MISSING) :].split(":", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    parts = []
    for tool in TOOLS:
        if tool.name in counts:
            parts.append(f"{counts[tool.name]} tests need {tool.name} ({tool.install})")
    return "NOT RUN: " + "; ".join(parts)
