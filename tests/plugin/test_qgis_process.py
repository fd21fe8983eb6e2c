"""qgis_process runs the provider's algorithms from the shell (Debian: qgis_process.bin, see docs/qgis.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from runtime_helpers import expected_classes

REPO = Path(__file__).resolve().parents[2]
# Debian's `qgis_process` wrapper passes a flag 3.22 rejects; the real executable is qgis_process.bin.
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
TIMEOUT_S = 180

pytestmark = pytest.mark.skipif(not Path(QGIS_PROCESS).is_file(), reason=f"needs {QGIS_PROCESS}")


@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory):
    """run(*args) -> CompletedProcess, with a throw-away profile where the contrasat plugin is enabled."""
    root = tmp_path_factory.mktemp("qgis_process")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "contrasat").symlink_to(REPO, target_is_directory=True)  # the folder name is the package
    # QGIS's own Python world: nothing of this venv on its path; jobs go to the engine (this interpreter)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QGIS_PLUGINPATH=str(plugins),
        QGIS_CUSTOM_CONFIG_PATH=str(root / "profile"),
    )
    ini = root / "profile" / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[contrasat]\nengine_python={sys.executable}\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [QGIS_PROCESS, *args], capture_output=True, text=True, env=env, cwd=root, timeout=TIMEOUT_S
        )

    enabled = run("plugins", "enable", "contrasat")
    assert enabled.returncode == 0, enabled.stderr
    return run


def _json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_map_floods_with_qgis_process(qgis_process, s1_sample, threshold_model, tmp_path):
    out, csv_path = tmp_path / "flood.tif", tmp_path / "areas.csv"
    result = _json(
        qgis_process(
            "--json", "run", "contrasat:map_floods", "--",
            f"INPUT_S1={s1_sample}", f"MODEL={threshold_model}", f"OUTPUT={out}", f"STATISTICS={csv_path}",
        )
    )  # fmt: skip
    assert result["results"]["OUTPUT"] == str(out) and result["results"]["FLOODED_KM2"] > 0
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(s1_sample))
    assert csv_path.read_text().startswith("value,name,area_km2")


def test_land_cover_with_qgis_process(qgis_process, s2_sample, lc_model, tmp_path):
    out = tmp_path / "lc.tif"
    result = _json(
        qgis_process(
            "--json",
            "run",
            "contrasat:land_cover",
            "--",
            f"INPUT_S2={s2_sample}",
            f"MODEL={lc_model}",
            f"OUTPUT={out}",
        )  # fmt: skip
    )
    assert set(json.loads(result["results"]["CLASS_AREAS_JSON"])) == {"land", "water"}
    with rasterio.open(out) as src:
        assert src.shape == (512, 512)
