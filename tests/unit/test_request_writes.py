"""Only the aggregate changes a replacement request: no module outside ``domain/``
assigns one of its attributes (an AST walk over ``src/resim``).

A name the request shares with another class (``state``, ``id``, ``reason``, ...)
counts when the assigned object is named like a request (``request``, ``req``,
``newer``, ...); a name only the request has counts whatever the object is called.
"""

from __future__ import annotations

import ast
from pathlib import Path

import resim

SRC = Path(resim.__file__).parent
REQUEST_NAMES = {"request", "req", "newer", "older", "replacement", "rr", "r"}


def _mutable_dataclass(cls: ast.ClassDef) -> bool:
    for deco in cls.decorator_list:
        call = deco if isinstance(deco, ast.Call) else None
        name = _base_name(deco)
        if name != "dataclass" and not (
            isinstance(deco, ast.Attribute | ast.Call) and "dataclass" in ast.unparse(deco)
        ):
            continue
        frozen = call is not None and any(
            k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value
            for k in call.keywords
        )
        return not frozen
    return False


def _self_attributes(cls: ast.ClassDef) -> set[str]:
    """Attributes a class sets on ``self``, and the fields of a mutable dataclass."""
    names = set()
    if _mutable_dataclass(cls):
        names = {
            n.target.id
            for n in cls.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
        }
    for node in ast.walk(cls):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.add(target.attr)
    return names


def _fields() -> tuple[set[str], set[str]]:
    """(the request's attributes, those some other class of resim also has)."""
    aggregate = sorted((SRC / "domain").glob("request*.py"))
    mine: set[str] = set()
    for path in aggregate:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                mine |= _self_attributes(node)
    others: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path in aggregate:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                others |= _self_attributes(node)
    return mine, mine & others


def _base_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _offences(path: Path, mine: set[str], shared: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if not isinstance(sub, ast.Attribute) or sub.attr not in mine:
                    continue
                owner = _base_name(sub.value)
                if owner == "self":
                    continue
                if sub.attr in shared and owner not in REQUEST_NAMES:
                    continue
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(sub)}")
    return found


def test_the_request_has_fields_to_guard() -> None:
    mine, _shared = _fields()
    assert {"state", "smdp_step", "installed_at", "old_sim_suspended"} <= mine


def test_no_module_outside_the_domain_assigns_a_request_attribute() -> None:
    mine, shared = _fields()
    offences: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "domain":
            continue
        offences += _offences(path, mine, shared)
    assert offences == []


def test_the_check_catches_an_assignment(tmp_path: Path) -> None:
    mine, shared = _fields()
    bad = tmp_path / "bad.py"
    assert "old_sim_suspended" not in shared
    bad.write_text(
        "def f(req, x):\n    req.state = 1\n    x.old_sim_suspended = 2\n    x.state = 3\n"
    )
    found = _offences(bad, mine, shared)
    assert [line.split(": ")[1] for line in found] == ["req.state", "x.old_sim_suspended"]
