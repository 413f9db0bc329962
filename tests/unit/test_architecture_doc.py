"""docs/architecture.md is drawn from the code: every package it must name exists,
and every package that exists is named there (issue 16, point 3)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "resim"
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _packages(under: Path) -> set[str]:
    return {p.parent.name for p in under.glob("*/__init__.py")}


def test_every_services_package_is_on_the_page() -> None:
    missing = sorted(
        p for p in _packages(SRC / "services") if p != "stores" and f"`services/{p}/`" not in DOC
    )
    assert not missing, f"docs/architecture.md does not describe services packages {missing}"


def test_the_page_names_no_services_package_that_is_gone() -> None:
    named = set(re.findall(r"`services/([a-z_]+)/`", DOC))
    gone = sorted(named - _packages(SRC / "services"))
    assert not gone, f"docs/architecture.md names services packages that do not exist: {gone}"


def test_no_loose_use_case_modules_beside_the_packages() -> None:
    """Only the unit of work, the repository and port Protocols and the context sit
    at the top of resim.services; a use case lives in its concept's package."""
    allowed = {"__init__", "context", "ports", "unit_of_work", "repositories", "repo", "transient"}
    loose = sorted(p.stem for p in (SRC / "services").glob("*.py") if p.stem not in allowed)
    assert not loose, f"modules at the top of resim.services: {loose}"
