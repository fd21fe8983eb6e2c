"""Scene prior correction: move the water/dry decision to the water share of the analyst's own scene.

Polygons are drawn half water, half dry and the loss weighs the classes alike, so a fine-tuned network
learns posteriors for a 50 % water prior, while most flood scenes hold a few per cent of water: on a real
scene that shows up as false water on every dark-ish field. Saerens, Latinne & Decaestecker ("Adjusting the
outputs of a classifier to new a priori probabilities", Neural Computation 2002) estimate the new prior by
EM on unlabelled pixels and correct each posterior by the prior ratio; for a softmax this is one shift of the
water logit, which is folded into the bias of the network's last convolution so the exported ONNX carries it.
No label is used: the pixels are the scene's own (the raster(s) being fine-tuned on).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

from ...models.card import ModelCard
from .base_weights import FloodNet
from .labels import open_raster, read_window
from .predict import predict_water

SAMPLE_TILE = 256  # scene pixels are scored in tiles of this size ...
SAMPLE_TILES = 16  # ... at most this many per raster, drawn at random (bounds time on large scenes)
CLIP = 1e-3  # priors kept inside [CLIP, 1 - CLIP]


def scene_tiles(
    rasters: list[str | Path], card: ModelCard, rng: np.random.Generator, tiles: int = SAMPLE_TILES
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(network input, valid mask) of up to `tiles` random tiles of each raster, read like the labels."""
    out, notes = [], []
    for path in rasters:
        raster = open_raster(path, card, notes)
        try:
            ds = raster.dataset
            grid = [(r, c) for r in range(0, ds.height, SAMPLE_TILE) for c in range(0, ds.width, SAMPLE_TILE)]
            picked = rng.permutation(len(grid))[:tiles]
            for k in sorted(picked.tolist()):
                r, c = grid[k]
                window = Window(c, r, min(SAMPLE_TILE, ds.width - c), min(SAMPLE_TILE, ds.height - r))
                out.append(read_window(raster, window))
        finally:
            raster.close()
    return out


def em_prior(probs: np.ndarray, train_prior: float, iterations: int = 200, tol: float = 1e-5) -> float:
    """Water share of the pixels whose water posteriors (under `train_prior`) are `probs` (Saerens 2002)."""
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    prior = train_prior
    for _ in range(iterations):
        w, v = prior / train_prior, (1 - prior) / (1 - train_prior)
        new = float(np.clip(np.mean(w * p / (w * p + v * (1 - p))), CLIP, 1 - CLIP))
        if abs(new - prior) < tol:
            return new
        prior = new
    return prior


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def shift_water_logit(net: FloodNet, shift: float) -> None:
    """Add `shift` to water-minus-dry logits by moving the last convolution's biases (half each)."""
    head = net.net.decoder.head if net.kind == "segnet" else net.net.head
    if net.kind == "anchored":  # water-minus-dry logit(s) z, one per member: every member's moves
        with torch.no_grad():
            head.bias[0] += shift
            if net.net.config["pair"]:
                net.net.anchor_head.bias[0] += shift
        return
    with torch.no_grad():
        head.bias[1] += shift / 2
        head.bias[0] -= shift / 2


def correct_prior(
    net: FloodNet, rasters: list[str | Path], card: ModelCard, train_prior: float, seed: int
) -> dict[str, float]:
    """Estimate the scene's water share and fold the prior correction into `net`; what was done."""
    net.eval()
    probs = [predict_water(net, x)[ok] for x, ok in scene_tiles(rasters, card, np.random.default_rng(seed))]
    pixels = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    if not len(pixels):
        return {"scene_water_share": math.nan, "train_water_share": train_prior, "logit_shift": 0.0}
    prior = em_prior(pixels, train_prior)
    shift = logit(prior) - logit(train_prior)
    shift_water_logit(net, shift)
    return {
        "scene_water_share": round(prior, 5),
        "train_water_share": round(train_prior, 4),
        "logit_shift": round(shift, 4),
        "pixels": int(len(pixels)),
        "water_share_before": round(float(np.mean(pixels > 0.5)), 5),
    }
