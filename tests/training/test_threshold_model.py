"""The bundled fixed-threshold flood model: exactly VH < -20 dB through the real runtime, with its card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import rasterio
from contrasat.models.card import read_card, write_card
from contrasat.models.pipeline import map_floods
from contrasat.models.registry import WEIGHTS_DIR
from contrasat.training.flood.threshold import threshold_card, threshold_graph

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "sample" / "Spain_7370579_S1Hand.tif"


def _loco() -> dict:
    counts = {"iou": 0.5, "tp": 1}
    return {"recipe": "r", "pooled": {"model": {"iou": 0.7}, "fixed_vh_-20dB": {"iou": 0.6}},
            "per_chip": {"A": {"model": {"iou": float("nan")}, "fixed_vh_-20dB": counts}}}  # fmt: skip


def test_rule_model_maps_exactly_vh_below_threshold(tmp_path):
    path = tmp_path / "thr.onnx"
    onnx.save(threshold_graph(), str(path))
    write_card(path, threshold_card(_loco()))
    card = read_card(path)
    assert card.metrics["loco"]["pooled_water_iou"] == {"model": 0.7, "fixed_vh_-20dB": 0.6}
    assert card.metrics["loco"]["per_chip_water_iou"]["A"]["model"] is None  # NaN stored as null
    result = map_floods(SAMPLE, tmp_path / "f.tif", model=path)
    with rasterio.open(result.output) as out, rasterio.open(SAMPLE) as src:
        classes, vh = out.read(1), src.read(2)
    decided = np.isfinite(vh) & (np.abs(vh + 20) > 1e-3)
    np.testing.assert_array_equal(classes[decided], (vh[decided] < -20).astype(np.uint8))


def test_bundled_rule_model_has_loco_metrics():
    card = read_card(WEIGHTS_DIR / "flood_vh_threshold.onnx")
    pooled = card.metrics["loco"]["pooled_water_iou"]
    assert card.task == "flood" and set(pooled) >= {"model", "fixed_vh_-20dB"}
    assert 0 < pooled["fixed_vh_-20dB"] < 1
