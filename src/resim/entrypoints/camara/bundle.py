"""One self-contained OpenAPI document from CAMARA's split sources.

From Commonalities r4 on, a CAMARA API file refers to the shared files
(``../common/CAMARA_common.yaml#/components/...``); CAMARA's release
automation bundles them into one file per API. resim keeps the sources byte
for byte (``spec/2.2/source/``) and serves the bundle (``spec/2.2/*.yaml``),
made by this module:

    python -m resim.entrypoints.camara.bundle   # rewrites spec/2.2/*.yaml

Each external reference ``<file>#/components/<kind>/<Name>`` becomes a local
``#/components/<kind>/<Name>`` and the component is copied in (with what it
refers to, recursively). A local component that is only a reference to the
same-named external one (``ErrorInfo: {$ref: ../common/...#/.../ErrorInfo}``)
takes its content. If two different components would share a name, the
imported one gets its file's stem as a prefix. Nothing else changes.
``tests/unit/test_camara_spec_bundle.py`` checks that the served files are
exactly what this produces.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).parent / "spec"


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """Timestamps stay strings: YAML 1.1 would read an unquoted example time as a
    datetime and write it back in another form (and without its nanoseconds)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506


BUNDLES = {
    "2.2": ("sim-swap.yaml", "sim-swap-subscriptions.yaml"),
}


class _Bundler:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.main = _read(root)
        self.files: dict[Path, Any] = {self.root: self.main}
        self.names: dict[tuple[Path, str, str], str] = {}  # (file, kind, name) -> local name
        self.components: dict[str, dict[str, Any]] = self.main.setdefault("components", {})

    def _load(self, path: Path) -> Any:
        if path not in self.files:
            self.files[path] = _read(path)
        return self.files[path]

    def _target(self, base: Path, ref: str) -> tuple[Path, str, str]:
        file_part, _, pointer = ref.partition("#")
        path = (base.parent / file_part).resolve() if file_part else base
        parts = pointer.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "components":
            raise ValueError(f"unsupported reference {ref!r} in {base.name}")
        return path, parts[1], parts[2]

    def _import(self, path: Path, kind: str, name: str) -> str:
        """The local name of ``path``'s component (copied in on first use)."""
        key = (path, kind, name)
        if key in self.names:
            return self.names[key]
        source = self._load(path)["components"][kind][name]
        local = self.components.setdefault(kind, {})
        target = name
        existing = local.get(name)
        if path != self.root and existing is not None:
            refers_here = (
                isinstance(existing, dict)
                and set(existing) == {"$ref"}
                and (self._target(self.root, existing["$ref"]) == key)
            )
            if not refers_here:
                target = f"{path.stem.replace('.', '_')}_{name}"
        self.names[key] = target
        if path != self.root:
            local[target] = self._resolve(copy.deepcopy(source), path)
        return target

    def _resolve(self, node: Any, base: Path) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return {**node, "$ref": self._ref(base, ref)}
            out = {k: self._resolve(v, base) for k, v in node.items()}
            mapping = (
                node.get("discriminator", {}).get("mapping") if "discriminator" in node else None
            )
            if isinstance(mapping, dict):  # discriminator targets are references too
                out["discriminator"] = {
                    **out["discriminator"],
                    "mapping": {k: self._ref(base, v) for k, v in mapping.items()},
                }
            return out
        if isinstance(node, list):
            return [self._resolve(v, base) for v in node]
        return node

    def _ref(self, base: Path, ref: str) -> str:
        path, kind, name = self._target(base, ref)
        if path == self.root and base == self.root:
            return ref
        return f"#/components/{kind}/{self._import(path, kind, name)}"

    def bundle(self) -> Any:
        # Local components that are bare external references take the content.
        for kind, items in list(self.components.items()):
            for name, value in list(items.items()):
                if isinstance(value, dict) and set(value) == {"$ref"}:
                    path, ref_kind, ref_name = self._target(self.root, value["$ref"])
                    if path != self.root and ref_kind == kind and ref_name == name:
                        self.names[(path, kind, name)] = name
                        items[name] = self._resolve(
                            copy.deepcopy(self._load(path)["components"][kind][name]), path
                        )
        resolved = self._resolve(
            {k: v for k, v in self.main.items() if k != "components"}, self.root
        )
        resolved["components"] = self.components
        # components copied in while resolving may refer to more: resolve until stable
        while True:
            before = yaml.safe_dump(self.components, sort_keys=True)
            for items in self.components.values():
                for name in list(items):
                    items[name] = self._resolve(items[name], self.root)
            if yaml.safe_dump(self.components, sort_keys=True) == before:
                break
        return resolved


def bundle(root: Path) -> str:
    """The bundled document of the API file ``root``, as YAML text."""
    document = _Bundler(root).bundle()
    header = (
        f"# Bundled by resim.entrypoints.camara.bundle from source/API_definitions/{root.name}\n"
        "# and source/common/*.yaml (see SOURCE.txt); the sources are kept byte for byte.\n"
    )
    text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return header + text


def main() -> None:
    for version, names in BUNDLES.items():
        for name in names:
            out = SPEC_DIR / version / name
            out.write_text(
                bundle(SPEC_DIR / version / "source" / "API_definitions" / name), encoding="utf-8"
            )
            print(f"wrote {out}")


if __name__ == "__main__":
    main()
