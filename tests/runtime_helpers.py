"""Helpers for runtime tests: real sample paths and tiny ONNX models whose answer is known in numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from contrasat.models.card import ClassInfo, InputSpec, ModelCard, write_card
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample"
S1_SAMPLE = SAMPLE / "Spain_7370579_S1Hand.tif"
S2_SAMPLE = SAMPLE / "Spain_7370579_S2Hand.tif"
THRESHOLD_DB = -20.0
FLOOD_CLASSES = [ClassInfo(0, "dry", "#00000000"), ClassInfo(1, "water", "#1f78b4ff")]


def s1_spec(name: str = "s1") -> InputSpec:
    # mean of VH at the threshold: normalised VH < 0 exactly where VH < -20 dB
    return InputSpec(name=name, sensor="S1", bands=["VV", "VH"], units="dB", mean=[-10.0, THRESHOLD_DB],
                     std=[4.0, 4.0], clip=[-50.0, 5.0])  # fmt: skip


def s2_spec(name: str = "s2") -> InputSpec:
    return InputSpec(name=name, sensor="S2L1C", bands=["B03", "B08"], units="reflectance_x10000",
                     mean=[1000.0, 1000.0], std=[1000.0, 1000.0])  # fmt: skip


def _pointwise_graph(inputs: list[tuple[str, int, int]]) -> onnx.ModelProto:
    """softmax(k·[v, -v]) where v = one chosen channel of one input: a per-pixel threshold at 0.

    `inputs`: (name, channels, channel that decides); only the first input decides, the others are
    added with weight 0 so the graph still consumes them (as a fusion model would).
    """
    nodes, inits, graph_inputs = [], [], []
    partials = []
    for i, (name, channels, decide) in enumerate(inputs):
        w = np.zeros((2, channels, 1, 1), dtype=np.float32)
        if i == 0:
            w[0, decide] = 10.0  # dry logit grows with backscatter
            w[1, decide] = -10.0  # water logit grows as backscatter falls
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, "H", "W"]))
        nodes.append(helper.make_node("Conv", [name, f"w{i}"], [f"z{i}"]))
        partials.append(f"z{i}")
    total = partials[0]
    for j, p in enumerate(partials[1:]):
        nodes.append(helper.make_node("Add", [total, p], [f"sum{j}"]))
        total = f"sum{j}"
    nodes.append(helper.make_node("Softmax", [total], ["probs"], axis=1))
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2, "H", "W"])
    graph = helper.make_graph(nodes, "threshold", graph_inputs, [out], initializer=inits)
    # IR 8 keeps the file loadable by older ONNX Runtime releases in analysts' QGIS installs
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def make_model(path: Path, specs: list[InputSpec], task: str = "flood", name: str = "vh_threshold") -> Path:
    """Write an ONNX threshold model with a card for `specs` (first input's last band decides)."""
    proto = _pointwise_graph([(s.name, len(s.bands), len(s.bands) - 1) for s in specs])
    onnx.save(proto, str(path))
    card = ModelCard(name=name, task=task, inputs=specs, classes=FLOOD_CLASSES, tile_size=128, overlap=16,
                     metrics={"note": "test model"})  # fmt: skip
    write_card(path, card)
    return path


def expected_classes(s1_path: Path) -> np.ndarray:
    """What the threshold model must produce: 1 where VH < -20 dB, 0 elsewhere, 255 where input is NaN."""
    import rasterio

    with rasterio.open(s1_path) as src:
        raw = src.read()
    valid = np.all(np.isfinite(raw), axis=0)
    out = (raw[1] < THRESHOLD_DB).astype(np.uint8)
    out[~valid] = 255
    return out
