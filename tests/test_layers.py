"""The package's layers, read from the source: spec <- trainer <- export; spec <- runtime <- benchmarks.

`import cgan.runtime` leaving torch out is checked by running it (test_runtime_translator.py); this file checks
the direction of every `cgan.*` import statically, so a new import that points the wrong way fails here even
where no test happens to execute it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cgan"

# what each layer may import of the others (the private helpers, cgan._*, errors and pairs are shared by all)
MAY_IMPORT = {
    "spec": set(),
    "pairs": {"spec"},
    "trainer": {"spec", "pairs"},
    "export": {"spec", "pairs", "trainer"},
    "runtime": {"spec", "pairs", "trainer"},  # trainer: only the torch backend, lazily (below)
    "benchmarks": {"spec", "pairs", "trainer", "export", "runtime"},
}
# the one place the runtime reaches the trainer: the torch backend rebuilds the trainer's generator
RUNTIME_TO_TRAINER = {"cgan/runtime/backends/torch_backend.py"}


def cgan_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported cgan layer, at module level?) for each `cgan.*` import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "cgan" and len(parts) > 1:
                found.append((parts[1], id(node) in top_level))
    return found


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) in MAY_IMPORT)


def test_every_layer_is_found():
    assert {layer_of(p) for p in SOURCES} == set(MAY_IMPORT)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(PACKAGE.parent).as_posix())
def test_imports_point_one_way(path):
    layer = layer_of(path)
    rel = path.relative_to(PACKAGE.parent).as_posix()
    for target, module_level in cgan_imports(path):
        if target == layer or target.startswith("_") or target == "errors" or target not in MAY_IMPORT:
            continue
        assert target in MAY_IMPORT[layer], f"{rel} imports cgan.{target}: {layer} may not"
        if layer == "runtime" and target == "trainer":
            assert rel in RUNTIME_TO_TRAINER, f"{rel} imports cgan.trainer: only the torch backend may"
            assert not module_level, f"{rel} imports cgan.trainer at module level: import it where it is used"


def test_shared_helpers_import_no_layer():
    """cgan._* (files, images, limits, ...) sit under every layer: they import none of them (pairs aside, for
    the locks that guard pair folders)."""
    for path in sorted(PACKAGE.glob("_*.py")):
        for target, _ in cgan_imports(path):
            assert target not in MAY_IMPORT or target == "pairs", f"{path.name} imports cgan.{target}"


def test_a_wrong_way_import_is_caught(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from cgan.export import api\nimport cgan.runtime.video\n")
    assert sorted(cgan_imports(bad)) == [("export", False), ("runtime", True)]
