"""The `contrasat` command: exit codes, one-line errors and the bundled models."""

from __future__ import annotations

import subprocess
import sys

import pytest
import rasterio
from contrasat.cli import main
from contrasat.models.registry import DEFAULTS
from runtime_helpers import expected_classes


def test_map_floods_command(tmp_path, threshold_model, s1_sample, capsys):
    out = tmp_path / "flood.tif"
    code = main(["map-floods", "--s1", str(s1_sample), "--model", str(threshold_model), "--out", str(out),
                 "--polygons", str(tmp_path / "w.gpkg"), "--provider", "cpu"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "flooded area:" in text and "CPUExecutionProvider" in text
    with rasterio.open(out) as src:
        assert (src.read(1) == expected_classes(s1_sample)).all()


@pytest.mark.parametrize(
    "args,needle",
    [(["--s1", "missing.tif"], "not found"), (["--s1", "{sample}", "--model", "nope"], "unknown model")],
)
def test_bad_input_exit_code_2_one_line(tmp_path, s1_sample, args, needle):
    args = [a.replace("{sample}", str(s1_sample)) for a in args]
    cmd = [sys.executable, "-m", "contrasat.cli", "map-floods", *args, "--out", str(tmp_path / "o.tif")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contrasat: error:") and needle in lines[0]
    assert not list(tmp_path.iterdir())


def test_console_script_is_installed():
    from pathlib import Path

    script = Path(sys.executable).parent / "contrasat"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "map-floods" in proc.stdout


def test_models_lists_bundled_flood_model(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert f"{DEFAULTS['flood']} (default)" in text and "S1 [VV, VH] in dB" in text


def test_demo_writes_maps_and_previews(tmp_path):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    for name in ("flood.tif", "flood.png", "flood.gpkg"):
        assert (tmp_path / name).stat().st_size > 0
    with rasterio.open(tmp_path / "flood.tif") as src:
        data = src.read(1)
        assert src.crs.to_epsg() == 4326 and set(map(int, set(data.ravel()))) <= {0, 1, 255}
        assert (data == 1).any() and (data == 0).any()
