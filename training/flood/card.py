"""The model card of the flood network: classes, tiling, metrics with their split, data and recipe."""

from __future__ import annotations

import math
from typing import Any

from ...models.card import ClassInfo, InputSpec, ModelCard
from ..common.metrics import Counts
from .config import FloodConfig

DATA_CREDIT = (
    "Sen1Floods11 hand-labelled chips (Bonafilia et al., 'Sen1Floods11: a georeferenced dataset to train and "
    "test deep learning flood algorithms for Sentinel-1', CVPR Workshops 2020), licence CC-BY-4.0"
)
LOCO_SPLIT = (
    "leave-one-chip-out over the 7 Sen1Floods11 hand-labelled chips ($CONTRASAT_DATA/sen1floods11): 7 folds, "
    "each trained on 6 chips with this recipe and scored on the held-out chip (a different region each time); "
    "pooled IoU = sum of intersections / sum of unions over held-out chips, label -1 and NaN S1 ignored"
)


def _num(x: float) -> float | None:
    """JSON-safe rounding: NaN (IoU undefined, e.g. a dry chip predicted dry) becomes null."""
    return None if x is None or math.isnan(x) else round(float(x), 4)


def iou_table(counts: dict[str, Counts]) -> dict[str, float | None]:
    return {m: _num(c.iou) for m, c in counts.items()}


def flood_card(
    spec: InputSpec,
    cfg: FloodConfig,
    holdout: str | None,
    train_chips: list[str],
    heldout: dict[str, Counts] | None,
    loco: dict[str, Any] | None,
    params: int,
) -> ModelCard:
    """Card for a trained fold; `loco` is {"per_chip": {chip: {method: Counts}}, "pooled": {method: Counts}}."""
    metrics: dict[str, Any] = {}
    if holdout and heldout:
        metrics["heldout"] = {
            "split": f"chip {holdout} held out (never seen in training); trained on {', '.join(train_chips)}",
            "chip": holdout,
            "water_iou": iou_table(heldout),
            "water_f1": {m: _num(c.f1) for m, c in heldout.items()},
            "accuracy": {m: _num(c.accuracy) for m, c in heldout.items()},
        }
    if loco:
        metrics["loco"] = {
            "split": LOCO_SPLIT,
            "pooled_water_iou": iou_table(loco["pooled"]),
            "per_chip_water_iou": {chip: iou_table(c) for chip, c in loco["per_chip"].items()},
        }
    training = {
        "data": f"{DATA_CREDIT}; trained on {len(train_chips)} chips: {', '.join(train_chips)}",
        "data_license": "CC-BY-4.0",
        "recipe": cfg.to_dict(),
        "steps": cfg.steps,
        "seed": cfg.seed,
        "params": params,
        "normalisation": "clip dB to [-50, 5], then (x - mean) / std with mean/std of the training chips' valid pixels",
        "code": "contrasat.training (train_flood.py, export.py)",
    }
    return ModelCard(
        name="flood_s1_unet",
        task="flood",
        inputs=[spec],
        classes=[ClassInfo(0, "dry", "#00000000"), ClassInfo(1, "water", "#1f78b4ff")],
        tile_size=256,
        overlap=32,
        resolution_m=10.0,
        output_kind="probabilities",
        description=(
            "Small U-Net on Sentinel-1 [VV, VH] backscatter in dB: per-pixel probabilities of dry/water. "
            "Trained on 6 hand-labelled chips only; compare its metrics with the VH < -20 dB threshold."
        ),
        metrics=metrics,
        training=training,
        license="GPL-2.0-or-later",
    ).validate()
