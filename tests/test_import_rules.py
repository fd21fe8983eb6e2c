"""The rules of docs/architecture.md ("What may import what"), checked on the source with ast.

Floors: models/ is headless (no torch, no QGIS), plugin/ has no torch and no training/, training/ has no QGIS.
Inside training/: a kit (flood, contrastive, pimc, landcover, finetune) imports only training/common and
models/, common imports no kit, and no training modules import each other in a cycle, not even through an
import inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "models": {"torch", "qgis", "PyQt5", "plugin", "training"},
    "plugin": {"torch", "training"},
    "training": {"qgis", "PyQt5", "plugin"},
}


def _imports(path: Path) -> set[str]:
    """Top-level names a module imports, with package-relative imports mapped to the sibling folder name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                parts = node.module.split(".")
                names.add(parts[1] if parts[0] == "contrasat" and len(parts) > 1 else parts[0])
            elif node.level >= 2 and node.module:  # from ..training.x import y
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_layers(package):
    offenders = {}
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    for path in files:
        bad = _imports(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_runtime_import_pulls_no_torch_or_qgis():
    """Importing the runtime and the CLI really loads neither torch nor QGIS (checked in a clean process)."""
    code = (
        "import sys, contrasat.cli, contrasat.demo, contrasat.models.pipeline, contrasat.models.series;"
        "print(sorted(m for m in ('torch', 'qgis', 'contrasat.training', 'contrasat.plugin') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_root_init_defines_only_class_factory():
    tree = ast.parse((REPO / "__init__.py").read_text(encoding="utf-8"))
    top_imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert top_imports == [] and functions == ["classFactory"]


# ---- inside training/ ----------------------------------------------------------------------------------

TRAINING = REPO / "training"
SHARED = {"common"}  # what every kit may import, besides models/


def _module(path: Path) -> str:
    """Dotted name below the repository root: training/flood/cli.py -> training.flood.cli."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _known(name: str) -> bool:
    base = REPO.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _targets(path: Path) -> Iterator[tuple[str, int]]:
    """Every repository module `path` imports, anywhere in the file (also inside functions), with its line."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            elif node.module and node.module.split(".")[0] == "contrasat":
                base, node.module = [], node.module.partition(".")[2]
            else:
                continue
            target = ".".join(base + (node.module.split(".") if node.module else []))
            subs = [f"{target}.{a.name}" for a in node.names if _known(f"{target}.{a.name}")]
            yield from ((t, node.lineno) for t in subs or [target])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("contrasat."):
                    yield alias.name.partition(".")[2], node.lineno


def _training_files() -> list[Path]:
    files = sorted(TRAINING.rglob("*.py"))
    assert len(files) > 50, "training/ not found"
    return files


def _floor(module: str) -> str | None:
    """The kit or `common` a training module belongs to (None for training/cli.py and training/__init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (TRAINING / parts[1]).is_dir()) else None


def test_kits_import_only_common_and_models():
    """A kit reaching into another kit (or common into a kit) is what issue 21 removed; models/ is fine."""
    offenders = []
    for path in _training_files():
        me = _module(path)
        mine = _floor(me)
        if mine is None:  # training/cli.py registers the kits: it is the one place that names them all
            continue
        for target, line in _targets(path):
            theirs = _floor(target) if target.startswith("training.") else None
            allowed = {mine} if mine in SHARED else {mine, *SHARED}
            if target.startswith("training") and theirs not in allowed:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or with a self-import (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle_hidden_in_a_function():
    """The check below can fail: a two-module cycle and a self-import are both reported."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"a"}}) == [["a"]] and _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_training_modules():
    graph = {
        _module(p): {t for t, _ in _targets(p) if t.startswith("training") and t != _module(p)}
        for p in _training_files()
    }
    assert _cycles(graph) == []
