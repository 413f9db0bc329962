"""The layers' import rules (issue 16), read from the source with ``ast``.

* ``resim.domain`` is pure: the standard library, ``phonenumbers``, and
  ``resim.domain`` / ``resim.errors`` only.
* ``resim.services`` never imports the database adapter (``resim.adapters.db``)
  nor an entrypoint (``resim.entrypoints``): use cases see the unit of work
  and its repositories (``resim.services.unit_of_work``,
  ``resim.services.repositories``), never tables or sessions.

Imports under ``if TYPE_CHECKING:`` count too: a type from the adapter is a
dependency on it. Modules not yet moved to the repositories are named in
:data:`NOT_YET_CONVERTED`, each with who moves it; the list only shrinks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "resim"

DOMAIN_MAY_IMPORT = ("resim.domain", "resim.errors", "phonenumbers")
SERVICES_MAY_NOT_IMPORT = ("resim.adapters.db", "resim.entrypoints")

# services modules that still import resim.adapters.db (issue 16 moves each to the
# repositories). Remove a name when its module is converted; never add one.
NOT_YET_CONVERTED: dict[str, str] = {}


def _modules(package: str) -> list[tuple[str, Path]]:
    root = SRC / package
    return sorted(
        (".".join(path.relative_to(root).with_suffix("").parts), path)
        for path in root.rglob("*.py")
    )


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            # `from resim.adapters import db` imports resim.adapters.db
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


@pytest.mark.parametrize(("name", "path"), _modules("domain"), ids=lambda v: str(v))
def test_the_domain_imports_only_the_standard_library_and_itself(name: str, path: Path) -> None:
    bad = sorted(
        i
        for i in _imports(path, f"resim.domain.{name}")
        if not _stdlib(i) and not _under(i, DOMAIN_MAY_IMPORT)
    )
    assert not bad, f"resim.domain.{name} imports {bad}"


@pytest.mark.parametrize(("name", "path"), _modules("services"), ids=lambda v: str(v))
def test_services_import_no_database_adapter_nor_entrypoint(name: str, path: Path) -> None:
    bad = sorted(
        i for i in _imports(path, f"resim.services.{name}") if _under(i, SERVICES_MAY_NOT_IMPORT)
    )
    if name in NOT_YET_CONVERTED:
        if not bad:
            pytest.fail(f"resim.services.{name} is converted: remove it from NOT_YET_CONVERTED")
        bad = [i for i in bad if not _under(i, ("resim.adapters.db",))]
    assert not bad, f"resim.services.{name} imports {bad}"


def test_every_module_still_allowed_exists() -> None:
    services = {name for name, _path in _modules("services")}
    assert set(NOT_YET_CONVERTED) <= services
