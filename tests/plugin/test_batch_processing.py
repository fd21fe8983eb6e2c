"""`contrasat:batch` in Processing: scenes mapped into a folder on the engine, the summary table returned."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def processing(plugin, qgis_processing):
    import processing as module

    return module


def test_batch_maps_scenes_into_a_folder(processing, s1_sample, threshold_model, tmp_path, saved_settings):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a_S1Hand.tif", "b_S1Hand.tif"):
        shutil.copy(s1_sample, scenes / name)
    out = tmp_path / "maps"
    result = processing.run(
        "contrasat:batch",
        {"SCENES": [str(p) for p in sorted(scenes.iterdir())], "OUTPUT": str(out), "MODEL": str(threshold_model),
         "WORKERS": 1, "THREADS": 1},
    )  # fmt: skip
    assert Path(result["OUTPUT"]) == out
    with open(result["SUMMARY"], newline="", encoding="utf-8") as f:
        rows = {row["scene"]: row["status"] for row in csv.DictReader(f)}
    assert rows == {"a_S1Hand": "done", "b_S1Hand": "done"}
    assert sorted(p.name for p in out.glob("*.tif")) == ["a_S1Hand_flood.tif", "b_S1Hand_flood.tif"]
