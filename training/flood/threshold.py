"""The fixed VH < -20 dB rule as a bundled ONNX model, so analysts can pick it where the U-Net is weak.

SCIENCE.md: a learned model must beat the fixed threshold on chips it never saw, or the product should say
so and offer the threshold. The U-Net loses to it on low-water chips (docs/results/flood.md), so the rule
ships as `flood_vh_threshold`, scored by the same leave-one-chip-out evaluation (it needs no training).

    contrasat train flood threshold --loco runs/flood-loco-A/loco.json \
        --out models/weights/flood_vh_threshold.onnx
"""

from __future__ import annotations

import math

import numpy as np

from ...models.card import ClassInfo, InputSpec, ModelCard
from .card import DATA_CREDIT, LOCO_SPLIT

THRESHOLD_DB = -20.0
SHARPNESS = 4.0  # logit slope per dB: p(water) is 0.5 at -20 dB, about 0.98 at -21 dB
METHOD = "fixed_vh_-20dB"


def threshold_graph():
    """softmax([k·(VH+20), -k·(VH+20)]) over (N, 2, H, W) inputs normalised by the card (VH + 20 dB)."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((2, 2, 1, 1), dtype=np.float32)
    w[0, 1], w[1, 1] = SHARPNESS, -SHARPNESS  # only VH decides
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["s1", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "vh_threshold",
        [helper.make_tensor_value_info("s1", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _iou(counts: dict) -> float | None:
    value = counts.get("iou")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 4)


def threshold_card(loco: dict) -> ModelCard:
    """Card of the rule with its leave-one-chip-out figures (the rule's and, for comparison, the U-Net's)."""
    spec = InputSpec(name="s1", sensor="S1", bands=["VV", "VH"], units="dB", mean=[0.0, THRESHOLD_DB],
                     std=[1.0, 1.0], clip=[-50.0, 5.0])  # fmt: skip
    per_chip = {chip: {m: _iou(c) for m, c in methods.items()} for chip, methods in loco["per_chip"].items()}
    metrics = {
        "loco": {
            "split": LOCO_SPLIT,
            "pooled_water_iou": {m: _iou(c) for m, c in loco["pooled"].items()},
            "per_chip_water_iou": per_chip,
            "note": f"this model is '{METHOD}'; 'model' is the U-Net recipe {loco.get('recipe', '')}",
        }
    }
    return ModelCard(
        name="flood_vh_threshold", task="flood", inputs=[spec],
        classes=[ClassInfo(0, "dry", "#00000000"), ClassInfo(1, "water", "#1f78b4ff")],
        description="Fixed rule: water where Sentinel-1 VH < -20 dB. No training; robust across regions, "
        "and better than the U-Net on low-water chips (see metrics). Ignores VV.",
        metrics=metrics,
        tile_size=512, overlap=0,  # a per-pixel rule: tiling cannot change the map, so no overlap is needed
        training={"data": f"none (a fixed rule); evaluated on {DATA_CREDIT}", "recipe": "VH < -20 dB"},
    )  # fmt: skip
