"""The layering of DESIGN.md: models/ is headless, plugin/ has no torch, training/ has no QGIS."""

from __future__ import annotations

import ast
import subprocess
import sys
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
