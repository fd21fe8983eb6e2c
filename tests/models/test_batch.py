"""`contrasat batch` on a LocalCluster of 2 worker processes, on real Sen1Floods11 chips."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models.batch import BatchOptions, Scene, find_scenes, run_batch
from contrasat.models.execution import Execution
from hostile_cases import ids
from runtime_helpers import S1_SAMPLE, expected_classes

SHARED_S1 = Path(__file__).resolve().parents[3] / "shared" / "data" / "sen1floods11" / "S1Hand"
SHARED_S1 = SHARED_S1 if SHARED_S1.is_dir() else Path("/work/shared/data/sen1floods11/S1Hand")


def _chips(folder: Path, n: int) -> list[Path]:
    """n real S1 chips copied into `folder`: the shared Sen1Floods11 chips, else the bundled sample."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(SHARED_S1.glob("*_S1Hand.tif")) if SHARED_S1.is_dir() else []
    sources = sources or [S1_SAMPLE]
    copies = []
    for i in range(n):
        src = sources[i % len(sources)]
        dst = folder / (src.name if len(sources) >= n else f"{src.stem}_{i}.tif")
        shutil.copy(src, dst)
        copies.append(dst)
    return copies


def _summary(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["scene"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def client():
    import distributed  # requirements/batch.txt, installed by scripts/setup.sh

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_batch_maps_reports_failure_and_resumes(tmp_path, client, threshold_model):
    chips = _chips(tmp_path / "in", 5)
    broken = tmp_path / "in" / "broken_S1Hand.tif"
    broken.write_bytes(b"II*\x00 not really a GeoTIFF" * 10)
    out = tmp_path / "out"
    options = BatchOptions(
        model=str(threshold_model), statistics=True, execution=Execution(provider="cpu", threads=1)
    )
    scenes = find_scenes([tmp_path / "in"])
    assert len(scenes) == 6

    results = run_batch(scenes, out, options, client=client, progress=False)
    rows = _summary(out / "batch_summary.csv")
    assert {r.status for r in results if r.scene != "broken_S1Hand"} == {"done"}
    assert rows["broken_S1Hand"]["status"] == "failed"
    assert "not a raster GDAL can read" in rows["broken_S1Hand"]["error"]
    assert rows[chips[0].stem]["provider"] == "CPUExecutionProvider"
    for chip in chips:
        with rasterio.open(out / f"{chip.stem}_flood.tif") as src:
            np.testing.assert_array_equal(src.read(1), expected_classes(chip))
        assert float(rows[chip.stem]["water km2"]) == pytest.approx(
            next(r for r in results if r.scene == chip.stem).areas_km2["water"], abs=1e-6
        )

    # resume: nothing done twice; a changed input, a lost output and the repaired scene are redone
    shutil.copy(chips[0], broken)
    os.utime(chips[1], ns=(1, 1))
    (out / f"{chips[2].stem}_flood.tif").write_bytes(b"")
    second = {r.scene: r.status for r in run_batch(find_scenes([tmp_path / "in"]), out, options, client=client,
                                                   progress=False)}  # fmt: skip
    assert second == {
        "broken_S1Hand": "done", chips[1].stem: "done", chips[2].stem: "done",
        chips[0].stem: "skipped", chips[3].stem: "skipped", chips[4].stem: "skipped",
    }  # fmt: skip
    marker = json.loads((out / "broken_S1Hand_flood.done.json").read_text())
    assert marker["inputs"]["s1"][1] == broken.stat().st_size
    third = run_batch(find_scenes([tmp_path / "in"]), out, options, client=client, progress=False)
    assert {r.status for r in third} == {"skipped"}
    # skipped scenes keep their areas in the summary
    assert _summary(out / "batch_summary.csv")[chips[0].stem]["water km2"] == rows[chips[0].stem]["water km2"]


def test_batch_survives_a_killed_worker(tmp_path, client):
    """A worker process dies mid-run: its scene is rerun on the restarted worker and every scene finishes."""
    chips = _chips(tmp_path / "in", 6)
    out = tmp_path / "out"
    killed = []

    def kill_a_busy_worker(_result) -> None:
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)  # no clean shutdown: the scene in progress is lost with it
            killed.append(busy[0])

    # the default flood model: slow enough per scene that the other worker is still busy when one ends
    results = run_batch(find_scenes([tmp_path / "in"]), out, BatchOptions(execution=Execution(provider="cpu", threads=1)), client=client,
                        progress=False, on_result=kill_a_busy_worker)  # fmt: skip
    assert killed, "no worker was busy when the first scene finished"
    assert killed[0] not in client.scheduler_info()["workers"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the worker for the next tests
    statuses = {r.scene: r.status for r in results}
    assert statuses == {c.stem: "done" for c in chips}
    for chip in chips:
        assert (out / f"{chip.stem}_flood.done.json").is_file()
    assert {r.status for r in run_batch(find_scenes([tmp_path / "in"]), out, BatchOptions(execution=Execution(provider="cpu", threads=1)),
                                        client=client, progress=False)} == {"skipped"}  # fmt: skip


def test_scene_lists_csv_and_stac(tmp_path):
    chips = _chips(tmp_path / "in", 2)
    (tmp_path / "list.csv").write_text(f"name,s1\nfirst,in/{chips[0].name}\n,{chips[1]}\n")
    assert find_scenes([tmp_path / "list.csv"]) == [
        Scene("first", {"s1": str(chips[0])}, str(tmp_path / "list.csv")),
        Scene(chips[1].stem, {"s1": str(chips[1])}, str(tmp_path / "list.csv")),
    ]  # fmt: skip
    item = {"type": "Feature", "id": "item-1", "assets": {"S1": {"href": f"file://{chips[0]}"}}}
    other = {
        "type": "Feature",
        "id": "item-2",
        "assets": {"vv_vh": {"href": chips[1].name, "roles": ["data"]}},
    }
    (tmp_path / "in" / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": [item, other]})
    )
    assert find_scenes([tmp_path / "in" / "items.json"]) == [
        Scene("item-1", {"s1": str(chips[0])}, str(tmp_path / "in" / "items.json")),
        Scene("item-2", {"s1": str(chips[1])}, str(tmp_path / "in" / "items.json")),
    ]  # fmt: skip
    with pytest.raises(Exception, match="unique"):
        find_scenes([tmp_path / "in" / chips[0].name, tmp_path / "in" / chips[0].name])


def test_cli_batch_refuses_output_folder_holding_inputs(tmp_path, capsys):
    chip = _chips(tmp_path / "in", 1)[0]
    before = chip.read_bytes()
    assert main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "in"), "--workers", "1"]) == 2
    assert "holds input" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "in").iterdir()] == [chip.name]
    assert chip.read_bytes() == before


def test_cli_batch_end_to_end(tmp_path, capsys, threshold_model):
    chips = _chips(tmp_path / "in", 2)
    code = main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "2", "--model",
                 str(threshold_model), "--polygons", "--provider", "cpu"])  # fmt: skip
    assert code == 0
    assert "2 scenes: 2 mapped, 0 already complete, 0 failed" in capsys.readouterr().out
    for chip in chips:
        assert (tmp_path / "out" / f"{chip.stem}_flood.gpkg").stat().st_size > 0


def _batch(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`contrasat batch ...` as a user runs it: its own process, real stderr."""
    cmd = [sys.executable, "-m", "contrasat", "batch", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def _refused(proc: subprocess.CompletedProcess, needle: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("contrasat: error: "), proc.stderr
    assert needle in lines[0], lines


@pytest.mark.parametrize("case", ids("batch"))
def test_hostile_batch(case, tmp_path, threshold_model):
    _chips(tmp_path / "in", 1)
    common = [tmp_path / "in", "--out", tmp_path / "out", "--model", threshold_model, "--workers", "1"]
    if case == "batch-workers-negative":
        proc = _batch(tmp_path / "in", "--out", tmp_path / "out", "--workers", "-2")
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            "contrasat: error: argument --workers: --workers must be 1 or more, not -2"
        ], proc.stderr
        assert not (tmp_path / "out").exists()
    elif case == "batch-cuda-without-cuda":
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            pytest.skip("this onnxruntime has CUDA: the case needs an onnxruntime without it")
        proc = _batch(*common, "--provider", "cuda")
        assert proc.returncode == 1, proc.stderr
        assert "has no CUDAExecutionProvider" in proc.stdout
        assert list((tmp_path / "out").glob("*.tif")) == []
        assert _summary(tmp_path / "out" / "batch_summary.csv").popitem()[1]["status"] == "failed"
    elif case == "batch-rerun-all-done":
        assert _batch(*common).returncode == 0
        proc = _batch(*common[:-2])  # no --workers: a cluster would start only if a scene were left to do
        assert proc.returncode == 0, proc.stderr
        assert "1 scenes: 0 mapped, 1 already complete, 0 failed" in proc.stdout
    elif case == "batch-out-is-file":
        (tmp_path / "file").write_text("not a folder")
        _refused(_batch(tmp_path / "in", "--out", tmp_path / "file"), "is a file")
        assert (tmp_path / "file").read_text() == "not a folder"
    elif case == "batch-summary-missing-folder":
        _refused(_batch(*common[:3], "--out", tmp_path / "new" / "out", "--summary", tmp_path / "nope" / "s.csv"),
                 "folder does not exist")  # fmt: skip
        assert not (tmp_path / "new").exists()
    elif case == "batch-missing-scene-input":
        chip = next((tmp_path / "in").iterdir())
        (tmp_path / "list.csv").write_text(f"name,s1\nok,{chip}\ngone,{tmp_path / 'gone.tif'}\n")
        proc = _batch(tmp_path / "list.csv", *common[1:])
        assert proc.returncode == 1, proc.stderr
        assert f"failed: gone: input not found: {tmp_path / 'gone.tif'}" in proc.stdout
        assert (tmp_path / "out" / "ok_flood.tif").is_file()
    elif case == "batch-resources-malformed":
        _refused(_batch(*common, "--resources", "GPU=x"), "NAME=AMOUNT")
    elif case == "batch-empty-scene-list":
        (tmp_path / "list.csv").write_text("name,s1\n")
        _refused(_batch(tmp_path / "list.csv", *common[1:]), "no scenes found")
    elif case == "batch-scheduler-unreachable":
        with socket.socket() as probe:  # a port nobody listens on: bound, never listened to
            probe.bind(("127.0.0.1", 0))
            address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
            proc = _batch(
                *common[:-2], "--scheduler", address, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}
            )
        _refused(proc, "Timed out trying to connect")
    elif case == "batch-quiet":
        proc = _batch(*common, "-q")
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert "1 mapped" in proc.stdout
    else:
        raise AssertionError(f"no builder for case {case}")
