#!/usr/bin/env python3
"""Build contrasat.zip for QGIS "Plugins > Install from ZIP".

    python scripts/package_plugin.py [--out dist/contrasat.zip]

The zip holds one folder, `contrasat/`, with what the plugin needs at run time: the package entry point,
metadata, licence, the runtime (`models/` with its bundled ONNX weights) and the CLI the engine process runs,
`plugin/`, `resources/`, `requirements/` (the pins of the engine environment and their hashed lock files),
`docs/qgis.md` (the plugin's Help button opens it), and the Python
files of `training/`: the engine runs `contrasat finetune` from them for the dock's and Processing's
Fine-tune (torch is imported only there, in the engine process). Training configs, tests, benchmarks, the
other docs, runs and the venv stay out; so do caches.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "contrasat"
# The plugin folder is also the package the engine runs (`python -m contrasat`), so the CLI ships with it.
ROOT_FILES = (
    "__init__.py", "__main__.py", "cli.py", "progress.py", "finetune_runner.py", "demo.py", "metadata.txt",
    "LICENSE", "README.md",
)  # fmt: skip
REQUIRED = (
    "__init__.py", "__main__.py", "cli.py", "metadata.txt", "LICENSE", "requirements/runtime.txt",
    "requirements/runtime.lock", "docs/qgis.md",
)  # fmt: skip
# folder -> file patterns shipped from it (recursively)
FOLDERS: dict[str, tuple[str, ...]] = {
    "models": ("*.py", "weights/*.onnx"),
    "plugin": ("*.py",),
    "resources": ("*",),
    # the pins and the hashed locks the plugin installs into its engine environment (CPU, GPU, training)
    "requirements": ("runtime.txt", "gpu.txt", "*.lock"),
    "docs": ("qgis.md",),  # the plugin's help page (metadata.txt's help URL, the installer's Help button)
    "training": ("*.py",),  # `contrasat finetune` on the engine (the plugin's Fine-tune); no configs or data
}
SKIP_PARTS = {"__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".aux.xml"}


def plugin_files(repo: Path = REPO) -> Iterator[Path]:
    """Files to ship, relative to the repo root, sorted for a reproducible zip."""
    found: set[Path] = {Path(name) for name in ROOT_FILES if (repo / name).is_file()}
    for folder, patterns in FOLDERS.items():
        for pattern in patterns:
            # a pattern with a folder in it names that folder only; a bare one matches at any depth
            matches = (repo / folder).glob(pattern) if "/" in pattern else (repo / folder).rglob(pattern)
            for path in matches:
                rel = path.relative_to(repo)
                if path.is_file() and not SKIP_PARTS & set(rel.parts) and not _skipped_suffix(rel):
                    found.add(rel)
    yield from sorted(found)


def _skipped_suffix(rel: Path) -> bool:
    return any(rel.name.endswith(suffix) for suffix in SKIP_SUFFIXES)


def build(out: Path, repo: Path = REPO) -> Path:
    """Write the zip to `out` (parent folders created) and return its path."""
    missing = [name for name in REQUIRED if not (repo / name).is_file()]
    if missing:
        raise SystemExit(f"cannot package: missing {', '.join(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in plugin_files(repo):
            zf.write(repo / rel, f"{PLUGIN_NAME}/{rel.as_posix()}")
    tmp.replace(out)  # a failed build never leaves a half-written zip under the final name
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "contrasat.zip", help="zip to write")
    args = parser.parse_args(argv)
    path = build(args.out.absolute())
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
    print(f"{path} ({count} files, {path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
