"""The training kits' layout rules (docs/architecture.md): common/ imports no kit; a kit imports another kit
only where the docs say why (contrastive reuses the flood kit's Sen1Floods11 reader, holdout and baseline;
finetune loads the flood U-Net and the contrastive SegNet)."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[2] / "training"
KITS = {"flood", "contrastive", "pimc", "landcover", "finetune"}
# (importer, imported); finetune loads the bundled networks of both flood kits (docs/architecture.md)
ALLOWED = {("contrastive", "flood"), ("finetune", "flood"), ("finetune", "contrastive")}


def _sibling_imports(path: Path) -> set[str]:
    """training/<x> folders a module under training/<kit>/ imports (`from ..x import` / `from ..x.y import`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            found.add(node.module.split(".")[0] if node.module else node.names[0].name)
    return found


def test_common_and_kits_keep_their_lanes():
    offenders = {}
    folders = sorted(p for p in TRAINING.iterdir() if (p / "__init__.py").is_file())
    assert {"common", "flood", "contrastive", "pimc"} <= {p.name for p in folders}
    for folder in folders:
        for path in folder.rglob("*.py"):
            kits = _sibling_imports(path) & KITS - {folder.name}
            bad = {k for k in kits if (folder.name, k) not in ALLOWED}
            if bad:
                offenders[str(path.relative_to(TRAINING))] = sorted(bad)
    assert offenders == {}


def test_one_definition_of_the_shared_pieces():
    """UsageError, the InfoNCE, the schedule, ParityError and the config loader are defined once, in common/."""
    names = {"UsageError", "ParityError", "info_nce", "warmup_cosine", "read_table", "clip_loss", "lr_lambda"}
    where: dict[str, list[str]] = {}
    for path in TRAINING.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names:
                where.setdefault(node.name, []).append(str(path.relative_to(TRAINING)))
    assert all(len(files) == 1 and files[0].startswith("common/") for files in where.values()), where
    assert set(where) == names - {"clip_loss", "lr_lambda"}


def test_train_help_needs_no_torch():
    """`contrasat train --help` works in a runtime-only install: building the parser imports no torch."""
    import subprocess
    import sys

    code = "import sys, contrasat.training.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
