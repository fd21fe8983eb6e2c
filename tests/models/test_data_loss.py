"""Hostile output paths: an input is never overwritten, bad targets are refused before any work."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from contrasat.cli import main
from hostile_cases import ids, snapshot, write_vrt
from runtime_helpers import S1_SAMPLE, S2_SAMPLE


def run_cli(args: list[str], capsys) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def assert_refused(args, folder, capsys, needle: str) -> str:
    before = snapshot(folder)
    code, err = run_cli(args, capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("contrasat: error: "), err
    assert needle in err[0], err[0]
    assert snapshot(folder) == before, "an existing file was changed or a file was left behind"
    return err[0]


@pytest.fixture
def work(tmp_path, threshold_model):
    """A folder with copies of the sample, a threshold model and an AOI, plus an existing previous map."""
    shutil.copy(S1_SAMPLE, tmp_path / "s1.tif")
    shutil.copy(S2_SAMPLE, tmp_path / "s2.tif")
    shutil.copy(threshold_model, tmp_path / "model.onnx")
    aoi = {
        "type": "Polygon",
        "coordinates": [[(-0.77, 38.11), (-0.76, 38.11), (-0.76, 38.12), (-0.77, 38.11)]],
    }
    (tmp_path / "aoi.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": aoi}],
            }
        )
    )
    (tmp_path / "previous.tif").write_bytes(b"previous result")
    return tmp_path


def flood(work, *extra):
    return ["map-floods", "--s1", work / "s1.tif", "--model", work / "model.onnx", *extra]


def lock(folder, request) -> None:
    """Make a folder unwritable: read-only for a normal user, immutable (chattr +i) for root."""
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o500)
        request.addfinalizer(lambda: folder.chmod(0o700))
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("needs chattr +i on the temp file system (root ignores folder permissions)")
    request.addfinalizer(lambda: subprocess.run([chattr, "-i", str(folder)], check=True))


def case_args(case: str, work, request) -> tuple[list, str]:
    """(CLI arguments, text the error must contain) for each case."""
    if case == "out-is-s1":
        return flood(work, "--out", work / "s1.tif"), "would overwrite the input"
    if case == "out-is-s1-relative":
        (work / "sub").mkdir()
        return flood(work, "--out", "./sub/../s1.tif"), "would overwrite the input"
    if case == "out-symlink-to-s1":
        (work / "link.tif").symlink_to(work / "s1.tif")
        return flood(work, "--out", work / "link.tif"), "would overwrite the input"
    if case == "out-hardlink-to-s1":
        os.link(work / "s1.tif", work / "hard.tif")
        return flood(work, "--out", work / "hard.tif"), "would overwrite the input"
    if case == "out-is-s2-land-cover":
        return ["land-cover", "--s2", work / "s2.tif", "--out", work / "s2.tif"], "would overwrite the input"
    if case == "probabilities-is-s1":
        return flood(
            work, "--out", work / "o.tif", "--probabilities", work / "s1.tif"
        ), "would overwrite the input"
    if case == "out-is-pre-event":
        shutil.copy(work / "s1.tif", work / "pre.tif")
        return flood(
            work, "--pre-event", work / "pre.tif", "--out", work / "pre.tif"
        ), "would overwrite the input"
    if case == "polygons-is-aoi":
        args = flood(
            work, "--aoi", work / "aoi.geojson", "--out", work / "o.tif", "--polygons", work / "aoi.geojson"
        )
        return args, "would overwrite the input"
    if case == "out-is-probabilities":
        return flood(work, "--out", work / "o.tif", "--probabilities", work / "o.tif"), "are the same file"
    if case == "out-is-vrt-source":
        write_vrt(work / "s1.vrt", work / "s1.tif")
        return (
            ["map-floods", "--s1", work / "s1.vrt", "--model", work / "model.onnx", "--out", work / "s1.tif"],
            "would overwrite the input",
        )
    if case == "out-png":
        return flood(work, "--out", work / "map.png"), "must be a GeoTIFF"
    if case == "out-jpg":
        return flood(work, "--out", work / "map.jpg"), "must be a GeoTIFF"
    if case == "probabilities-png":
        return flood(work, "--out", work / "o.tif", "--probabilities", work / "p.png"), "must be a GeoTIFF"
    if case == "out-no-extension":
        return flood(work, "--out", work / "map"), "no extension"
    if case == "polygons-shp":
        return flood(work, "--out", work / "previous.tif", "--polygons", work / "p.shp"), ".gpkg or .geojson"
    if case == "statistics-xlsx":
        return flood(work, "--out", work / "o.tif", "--statistics", work / "s.xlsx"), ".csv"
    if case == "out-fifo":
        os.mkfifo(work / "pipe.tif")
        return flood(work, "--out", work / "pipe.tif"), "not a regular file"
    if case == "out-device":
        if os.geteuid() != 0:
            pytest.skip("needs root to create a device node (mknod)")
        os.mknod(work / "dev.tif", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        return flood(work, "--out", work / "dev.tif"), "not a regular file"
    if case == "out-folder":
        (work / "folder.tif").mkdir()
        return flood(work, "--out", work / "folder.tif"), "is a folder"
    if case == "out-readonly-folder":
        (work / "locked").mkdir()
        lock(work / "locked", request)
        return flood(work, "--out", work / "locked" / "o.tif"), "not writable"
    if case == "out-read-only-file":
        (work / "previous.tif").chmod(0o444)
        return flood(work, "--out", work / "previous.tif"), "read-only"
    if case.startswith("batch-summary-"):
        (work / "scenes").mkdir()
        shutil.copy(work / "s1.tif", work / "scenes" / "a.tif")
        (work / "scenes.csv").write_text("name,s1\na,scenes/a.tif\n")
        args = [
            "batch",
            work / "scenes.csv",
            "--out",
            work / "out",
            "--workers",
            "1",
            "--model",
            work / "model.onnx",
        ]
        summary = {
            "batch-summary-is-input": (work / "scenes" / "a.tif", ".csv"),
            "batch-summary-is-scene-list": (work / "scenes.csv", "would overwrite the input"),
            "batch-summary-is-scene-output": (work / "out" / "a_flood.csv", "would overwrite the input"),
        }
        path, needle = summary[case]
        (work / "out").mkdir()
        return [*args, "--statistics", "--summary", path], needle
    if case == "out-missing-folder":
        return flood(work, "--out", work / "nope" / "o.tif"), "does not exist"
    if case == "series-out-is-stack":
        from runtime_helpers import REPO

        stack = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
        shutil.copy(stack, work / "stack.tif")
        return [
            "classify-series",
            "--stack",
            work / "stack.tif",
            "--out",
            work / "stack.tif",
        ], "would overwrite"
    if case == "demo-out-is-file":
        return ["demo", "--out", work / "previous.tif"], "existing file"
    raise AssertionError(f"no builder for case {case}")


@pytest.mark.parametrize("case", ids("data_loss"))
def test_output_never_replaces_an_input(case, work, capsys, request, monkeypatch):
    monkeypatch.chdir(work)
    args, needle = case_args(case, work, request)
    assert_refused(args, work, capsys, needle)


def test_reliability_page_lists_every_case():
    """docs/reliability.md is generated from the case table; regenerate it when cases change."""
    from hostile_cases import CASES, markdown
    from runtime_helpers import REPO

    page = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert page == markdown(), "run: python tests/hostile_cases.py > docs/reliability.md"
    assert len(CASES) >= 60
