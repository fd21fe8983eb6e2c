"""Tiny ONNX models for the plugin's land-cover and time-series jobs, with known per-pixel answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from contrasat.models.card import ClassInfo, InputSpec, ModelCard, write_card
from onnx import TensorProto, helper, numpy_helper
from runtime_helpers import _pointwise_graph, s2_spec

LC_CLASSES = [ClassInfo(0, "land", "#a6d96aff"), ClassInfo(1, "water", "#2b83baff")]
SERIES_CLASSES = [ClassInfo(0, "stable", "#1a9641ff"), ClassInfo(1, "changing", "#fdae61ff")]
B08_THRESHOLD = 1000.0  # s2_spec's B08 mean: class 1 ("water") exactly where B08 < 1000


def make_land_cover_model(path: Path) -> Path:
    """S2 (B03, B08) land-cover model: 'water' where B08 < 1000, else 'land'."""
    onnx.save(_pointwise_graph([("s2", 2, 1)]), str(path))
    card = ModelCard(name="lc_threshold", task="land_cover", inputs=[s2_spec()], classes=LC_CLASSES,
                     tile_size=128, overlap=16, metrics={"overall_accuracy": 0.5},
                     description="test model")  # fmt: skip
    write_card(path, card)
    return path


def make_series_model(path: Path, n_steps: int = 16) -> Path:
    """Recurrence-plot model: 'changing' when the mean of the (normalised) plot is above 0.5."""
    rp = helper.make_tensor_value_info("rp", TensorProto.FLOAT, ["N", 1, n_steps, n_steps])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])
    inits = [
        numpy_helper.from_array(np.array([[-10.0, 10.0]], dtype=np.float32), "w"),
        numpy_helper.from_array(np.array([5.0, -5.0], dtype=np.float32), "b"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["rp"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["mean", "w"], ["z"]),
        helper.make_node("Add", ["z", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(nodes, "series", [rp], [probs], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    spec = InputSpec(name="rp", sensor="S2_TS", bands=["NDVI"], units="index", mean=[0.0], std=[1.0])
    card = ModelCard(name="series_test", task="pixel_timeseries", inputs=[spec], classes=SERIES_CLASSES,
                     tile_size=64, overlap=0,
                     training={"series": {"indices": ["NDVI"], "n_steps": n_steps, "min_dates": 4}})  # fmt: skip
    write_card(path, card)
    return path
