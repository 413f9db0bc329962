"""The onboarding import reaches the database only through its port (issue 16.2)."""

from __future__ import annotations

import ast
from pathlib import Path

import resim.services.onboarding as onboarding


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_onboarding_module_imports_the_database_adapters() -> None:
    package = Path(onboarding.__file__).parent
    offenders = {
        path.name: sorted(n for n in _imports(path) if n.startswith("resim.adapters.db"))
        for path in sorted(package.glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
