"""The fine-tuning study end to end on a real fixture chip: polygons only on labelling blocks, scores on
the others, and the results page generated from the results file."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from contrasat.training.finetune.label_draw import draw_polygons
from contrasat.training.finetune.study import blocks, run_study, write_report
from rasterio.features import rasterize

CHIP = "Spain_7370579"


def test_polygons_stay_on_labelling_blocks_and_inside_their_class(floods_root):
    with rasterio.open(floods_root / "LabelHand" / f"{CHIP}_LabelHand.tif") as ds:
        label, transform = ds.read(1), ds.transform
    allowed = blocks(label.shape)
    drawn = draw_polygons(label, transform, 10, np.random.default_rng(0), allowed)
    assert len(drawn) == 10
    for geom, cls in drawn:
        mask = rasterize([(geom, 1)], out_shape=label.shape, transform=transform) > 0
        assert mask.sum() > 0 and allowed[mask].all() and (label[mask] == cls).all()


def test_study_runs_and_writes_its_page(tmp_path):
    path = run_study(tmp_path / "study", chips=(CHIP,), counts=(2,), seeds=(0,), steps=4)
    results = json.loads(path.read_text())
    run = results["runs"][f"{CHIP}/2/0/base"]
    assert run["drawn"] == 2 and 0.0 <= run["score"]["iou"] <= 1.0 and run["seconds_finetune"] > 0
    assert set(results["references"]) == {f"{CHIP}/flood_s1_contrastive", f"{CHIP}/flood_vh_threshold"}
    page = write_report(path, tmp_path / "finetune.md")
    text = page.read_text()
    assert f"## {CHIP}" in text and "| 2 | random |" in text and page.with_suffix(".png").is_file()
    mtime = path.stat().st_mtime_ns
    run_study(tmp_path / "study", chips=(CHIP,), counts=(2,), seeds=(0,), steps=4)  # resumed: nothing reruns
    assert json.loads(path.read_text())["runs"] == results["runs"] and path.stat().st_mtime_ns == mtime
