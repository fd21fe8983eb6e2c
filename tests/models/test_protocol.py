"""The CLI's machine-readable side, which the QGIS plugin relies on: JSON progress lines, --json, --version."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from contrasat.cli import main, package_version
from contrasat.models.registry import DEFAULTS


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _job(tmp_path, threshold_model, s1_sample, *extra):
    return ["--progress", "json", "map-floods", "--s1", str(s1_sample), "--model", str(threshold_model),
            "--out", str(tmp_path / "o.tif"), *extra]  # fmt: skip


def test_json_progress_stream_ends_with_done(tmp_path, threshold_model, s1_sample, capsys):
    args = _job(tmp_path, threshold_model, s1_sample, "--tile", "64", "--overlap", "0", "--batch", "1",
                "--statistics", str(tmp_path / "a.csv"), "--threads", "100000")  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every stderr line is one JSON object
    progress = [e["fraction"] for e in events if e["event"] == "progress"]
    assert 1 < len(progress) <= 101 and progress == sorted(progress) and progress[-1] == 1.0
    messages = [e for e in events if e["event"] == "message"]
    assert any(m["level"] == "warning" and "capped" in m["text"] for m in messages)
    assert [e["event"] for e in events].count("done") == 1 and events[-1]["event"] == "done"
    result = events[-1]["result"]
    assert result["outputs"]["classes"] == str(tmp_path / "o.tif")
    assert result["outputs"]["statistics"] == str(tmp_path / "a.csv")
    assert result["model"] == "vh_threshold" and result["provider"].endswith("ExecutionProvider")
    assert result["shape"] == [512, 512] and result["crs"] == "EPSG:4326"
    assert result["class_area_km2"]["water"] == pytest.approx(result["flooded_km2"])
    assert "wrote" in captured.out  # the human summary still goes to stdout


def test_json_error_and_usage_error_events(tmp_path, threshold_model, s1_sample, capsys):
    assert main(_job(tmp_path, threshold_model, tmp_path / "missing.tif")) == 2
    events = _events(capsys.readouterr().err)
    assert events[-1]["event"] == "error" and events[-1]["exit"] == 2 and "not found" in events[-1]["message"]
    assert main(["--progress", "json", "map-floods", "--s1", "x.tif", "--out", "o.tif", "--batch", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        len(err) == 1
        and json.loads(err[0])["event"] == "error"
        and "--batch" in json.loads(err[0])["message"]
    )


def test_progress_option_after_the_command(tmp_path, threshold_model, s1_sample, capsys):
    args = ["map-floods", "--s1", str(s1_sample), "--model", str(threshold_model), "--out", str(tmp_path / "o.tif"),
            "--progress", "json"]  # fmt: skip
    assert main(args) == 0
    assert _events(capsys.readouterr().err)[-1]["event"] == "done"


def test_json_summary_on_stdout(tmp_path, threshold_model, s1_sample, capsys):
    args = ["map-floods", "--s1", str(s1_sample), "--model", str(threshold_model), "--out", str(tmp_path / "o.tif"),
            "--json", "--progress", "none"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["task"] == "flood" and summary["outputs"]["polygons"] is None
    assert captured.err == ""


def test_models_json_lists_bundled_models(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {m["name"]: m for m in listing}
    assert [n for n, m in names.items() if m["default"] and m["task"] == "flood"] == [DEFAULTS["flood"]]
    assert names["flood_s1_unet"]["inputs"][0]["bands"] == ["VV", "VH"]
    # every model has a task; a feature extractor (task features) has no classes, every other model has some
    assert all(m["task"] and bool(m["classes"]) == (m["task"] != "features") for m in listing)


def test_version_and_python_m(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "contrasat", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"contrasat {package_version()}"
    assert package_version()[0].isdigit()
    proc = subprocess.run([sys.executable, "-m", "contrasat", "map-floods", "--s1", "x.tif", "--out",
                           str(tmp_path / "o.tif"), "--tile", "0"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "contrasat: error: argument --tile: --tile must be 16 or more, not 0"
    ]


def test_cancel_event_in_json_mode(tmp_path, threshold_model, s1_sample, capsys, monkeypatch):
    import contrasat.models.pipeline as pipeline

    original = pipeline.run_tiled
    monkeypatch.setattr(
        pipeline, "run_tiled", lambda *a, **k: original(*a, **k | {"is_cancelled": lambda: True})
    )
    assert main(_job(tmp_path, threshold_model, s1_sample)) == 130
    assert _events(capsys.readouterr().err)[-1] == {"event": "cancelled", "exit": 130}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated-cog", "no-geotransform"])
def test_process_stderr_is_one_line(tmp_path, s1_sample, damage):
    """What GDAL/libtiff print themselves never reaches the terminal: the process writes one error line."""
    import warnings

    import rasterio
    from rasterio.shutil import copy as copy_raster
    from rasterio.transform import Affine

    bad = tmp_path / "bad.tif"
    if damage == "truncated-cog":
        copy_raster(s1_sample, tmp_path / "cog.tif", driver="COG")
        data = (tmp_path / "cog.tif").read_bytes()
        bad.write_bytes(data[: int(len(data) * 0.6)])
    else:
        with rasterio.open(s1_sample) as src, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(bad, "w", **(src.profile | {"transform": Affine.identity()})) as dst:
                dst.write(src.read())
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "contrasat", "map-floods", "--s1", str(bad), "--out", str(out / "o.tif"),
           "--tile", "64", "--overlap", "0"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("contrasat: error: "), proc.stderr
    assert list(out.iterdir()) == []
