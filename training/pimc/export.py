"""Export the PIMC pixel time-series land-cover classifier to ONNX with its model card.

The recurrence plot is NOT in the graph: the runtime computes it once, in models/recurrence.py, following the
series contract stored in the card (card.training['series']). The graph maps normalised plots (N, C, S, S)
to class probabilities (N, K).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ...models.card import ClassInfo, InputSpec, ModelCard
from ...models.series import SERIES_KEY
from ..common.export import export_onnx
from .data import LULC_CLASSES, N_STEPS, SPLIT_NAME, TEST_BLOCKS, VAL_BLOCKS
from .networks import Classifier, RPEncoder


def series_contract(indices: list[str]) -> dict[str, Any]:
    """How a stack of dates becomes the network input; the runtime follows it literally."""
    return {
        "indices": indices,
        "n_steps": N_STEPS,
        "resample": "linear interpolation at n_steps equally spaced times from the first to the last date",
        "gap_fill": "invalid dates (nodata, cloud) linearly interpolated in time between valid neighbours, "
        "ends held (models.indices.fill_gaps)",
        "recurrence": "unthresholded |x_i - x_j| per index (models.recurrence.recurrence_plot), then (v - mean) / std",
        "reflectance": "S2 bands B02/B04/B08 as DN/10000 after removing the +1000 offset when present",
        "min_dates": 4,
    }


def lulc_card(norm: dict[str, float], scores: dict[str, Any] | None, indices: list[str]) -> ModelCard:
    """Card of the land-cover classifier: classes 0..C-1 with the original Slovenian LULC codes kept."""
    spec = InputSpec(
        name="rp", sensor="S2_TS", bands=list(indices), units="recurrence_plot_abs_diff",
        mean=[norm["rp_mean"]] * len(indices), std=[norm["rp_std"]] * len(indices),
        nodata="pixel without any valid date -> output nodata",
    )  # fmt: skip
    classes = [ClassInfo(i, name, color) for i, (_, name, color) in enumerate(LULC_CLASSES)]
    metrics: dict[str, Any] = {
        "split": f"{SPLIT_NAME}: 25x25-px blocks of the 101x100 patch, test blocks {sorted(TEST_BLOCKS)}, "
        f"val blocks {sorted(VAL_BLOCKS)}, train the other 11 (block row, block col)",
    }
    if scores:
        metrics.update({k: round(float(v), 4) for k, v in scores.items()})
    return ModelCard(
        name="pixel_ts_landcover", task="pixel_timeseries", inputs=[spec], classes=classes,
        tile_size=64, overlap=0, resolution_m=10.0, output_kind="probabilities (N, C) per pixel",
        description="PIMC: recurrence-plot CNN pre-trained contrastively against S2 patches, fine-tuned on "
        "Slovenian LULC; input = per-pixel NDVI series of a multi-date S2 stack",
        metrics=metrics,
        training={
            SERIES_KEY: series_contract(list(indices)),
            "original_codes": {str(i): code for i, (code, _, _) in enumerate(LULC_CLASSES)},
            "data": "eo-learn example data (Slovenia patch, 68 dates 2015-2017), Sinergise, MIT",
            "recipe": "CLIP InfoNCE pre-training (RP CNN vs 9x9 S2 patch of one of 5 reference scenes), "
            "then fine-tuning with inverse-sqrt class weights; best epoch by val macro-F1",
            "excluded_codes": {"1": "cultivated land: 11 pixels in one block"},
        },
        license="GPL-2.0-or-later (weights); data MIT (Sinergise eo-learn)",
    )  # fmt: skip


def export_classifier(model: Classifier, card: ModelCard, path: str | Path) -> float:
    """Write `model` (softmax output) to `path` with `card`; returns max |ORT - torch| (ParityError if off)."""
    channels = len(card.inputs[0].bands)
    return export_onnx(
        model, card, path, example={"rp": (2, channels, N_STEPS, N_STEPS)},
        dynamic={"rp": {0: "n"}, "probs": {0: "n"}}, checks=[{"rp": (37, channels, N_STEPS, N_STEPS)}],
    )  # fmt: skip


def export_checkpoint(checkpoint: Path, out: Path, results: str | None = None) -> Path:
    """Rebuild the classifier saved by the experiment, export it, and put its test scores in the card."""
    saved = torch.load(checkpoint, weights_only=False)
    channels = saved["state"]["encoder.net.0.0.weight"].shape[1]
    model = Classifier(RPEncoder(channels), len(LULC_CLASSES), softmax=True)
    model.load_state_dict(saved["state"])
    scores = dict(saved["scores"])
    if results:
        scores["note"] = json.loads(Path(results).read_text()).get("data", "")
    scores = {k: v for k, v in scores.items() if isinstance(v, int | float)}
    card = lulc_card(
        saved["norm"], {f"test_{k}" if k != "val_f1" else k: v for k, v in scores.items()}, ["NDVI"]
    )
    export_classifier(model, card, out)
    return out
