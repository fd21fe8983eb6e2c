"""The built wheel is complete: installed into a fresh venv, outside the repository, every command starts."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "bench", "scripts", "docs", "build", "dist", ".venv", "runs"}
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "runs",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "ext-libs",
    ".qgis-settings",  # pytest-qgis profile; the engine links the repo into it (a loop)
    "demo-output",
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(venv bin folder, environment, wheel): the wheel built from a clean copy of the tree, installed alone."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    src = tmp / "src"
    shutil.copytree(
        REPO, src, ignore=NOT_SOURCE, symlinks=True
    )  # a fresh tree: no stale build/ from earlier layouts
    pip_wheel = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        "dist",
    ]
    _run([*pip_wheel, str(src)], tmp, env)
    (wheel,) = (tmp / "dist").glob("contrasat-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp, env)
    py = venv / "bin" / "python"
    # torch, onnxruntime, rasterio come from this test's environment (a venv itself), not from PyPI
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env)
    Path(purelib.strip(), "parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], tmp, env)
    return venv / "bin", env, wheel


def test_wheel_ships_every_package_and_data_file(installed):
    names = set(zipfile.ZipFile(installed[2]).namelist())
    folders = [p.parent.relative_to(REPO) for p in REPO.rglob("__init__.py")]
    shipped = [f for f in folders if not f.parts or f.parts[0] not in NOT_SHIPPED]
    assert {"training/contrastive", "training/common", "training/flood", "training/pimc"} <= {
        f.as_posix() for f in shipped
    }
    missing = [f for f in shipped if (Path("contrasat") / f / "__init__.py").as_posix() not in names]
    assert missing == []
    for pattern in (
        "training/configs/*.toml",
        "models/weights/*.onnx",
        "requirements/*.txt",
        "resources/**/*",
    ):
        files = [p for p in REPO.glob(pattern) if p.is_file()]
        assert files, pattern
        missing = [
            str(p.relative_to(REPO))
            for p in files
            if f"contrasat/{p.relative_to(REPO).as_posix()}" not in names
        ]
        assert missing == [], pattern
    assert "contrasat/metadata.txt" in names and "contrasat/setup.py" not in names
    assert not [
        n for n in names if n.startswith(("contrasat/tests/", "contrasat/bench/")) or "__pycache__" in n
    ]


def test_installed_commands_run_outside_the_repository(installed, tmp_path):
    bin_dir, env, _ = installed
    where = _run(
        [str(bin_dir / "python"), "-c", "import contrasat; print(contrasat.__file__)"], tmp_path, env
    )
    assert where.strip().startswith(str(bin_dir.parent)), where  # the wheel's copy, not the checkout
    models = _run([str(bin_dir / "contrasat"), "models"], tmp_path, env)
    assert "flood_s1_unet" in models and "pixel_ts_landcover" in models
    kits = _run([str(bin_dir / "contrasat"), "train", "--help"], tmp_path, env)
    assert all(kit in kits for kit in ("flood", "contrastive", "pimc"))
    contrastive = _run([str(bin_dir / "contrasat"), "train", "contrastive", "--help"], tmp_path, env)
    assert all(cmd in contrastive for cmd in ("pretrain", "finetune", "experiment", "export"))
    # the default recipe resolves inside the installed package and loads
    check = (
        "from contrasat.training.common.config import load;"
        "from contrasat.training.contrastive.cli import DEFAULT_CONFIG;"
        "from contrasat.training.contrastive.config import PretrainConfig;"
        "print(DEFAULT_CONFIG.is_file(), load(PretrainConfig, DEFAULT_CONFIG, 'pretrain').method)"
    )
    assert _run([str(bin_dir / "python"), "-c", check], tmp_path, env).split() == ["True", "multimodal"]
    assert not (tmp_path / "runs").exists()
    # one version: the wheel's (pyproject.toml) is the one the QGIS metadata.txt inside it declares
    versions = (
        "import configparser, importlib.metadata as md, pathlib, contrasat;"
        "meta = configparser.ConfigParser(interpolation=None);"
        "meta.read(pathlib.Path(contrasat.__file__).with_name('metadata.txt'));"
        "print(md.version('contrasat'), meta['general']['version'])"
    )
    wheel_version, plugin_version = _run([str(bin_dir / "python"), "-c", versions], tmp_path, env).split()
    assert wheel_version == plugin_version
