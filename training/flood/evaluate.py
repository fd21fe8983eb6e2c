"""Held-out scoring of a flood network next to the threshold baselines (per-chip Otsu and VH < -20 dB),
by the same code on the same pixels (the baselines live in common/flood_data/baselines.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...models.card import InputSpec
from ...models.preprocess import prepare
from ..common.flood_data.baselines import fixed_vh, otsu_vh
from ..common.flood_data.sen1floods11 import Chip
from ..common.metrics import Counts, confusion

METHODS = ("model", "otsu_vh", "fixed_vh_-20dB")


@torch.no_grad()
def predict_water(net: torch.nn.Module, s1_db: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(H, W) water probability of a whole chip; H, W must suit the network's pooling."""
    net.eval()
    x = torch.from_numpy(prepare(s1_db, spec))[None]
    return torch.softmax(net(x), dim=1)[0, 1].numpy()


def score_chip(net: torch.nn.Module, spec: InputSpec, chip: Chip) -> tuple[dict[str, Counts], float]:
    """Held-out counts for the model and both baselines, on the same valid pixels."""
    otsu_mask, otsu_db = otsu_vh(chip.s1)
    preds = {
        "model": predict_water(net, chip.s1, spec) > 0.5,
        "otsu_vh": otsu_mask,
        "fixed_vh_-20dB": fixed_vh(chip.s1),
    }
    return {m: confusion(p, chip.label, chip.valid) for m, p in preds.items()}, otsu_db


def counts_from(result: dict[str, Any]) -> dict[str, Counts]:
    return {m: Counts(*(int(d[k]) for k in ("tp", "fp", "fn", "tn"))) for m, d in result["counts"].items()}
