"""Flood evaluation: threshold baselines on VH, held-out scoring, and leave-one-chip-out (LOCO).

LOCO trains one fold per chip, saved as it completes (a rerun resumes), then pools the counts. The baselines
(per-chip Otsu and a fixed threshold on VH dB) are scored by the same code on the same pixels as the model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...models.card import InputSpec
from ...models.preprocess import prepare
from ..common.metrics import Counts, confusion, pooled
from ..common.splits import leave_one_out
from .config import FloodConfig
from .data import Chip

log = logging.getLogger(__name__)
METHODS = ("model", "otsu_vh", "fixed_vh_-20dB")
VH = 1  # band index in S1_BANDS order (VV, VH)
FIXED_VH_DB = -20.0


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold (maximum between-class variance) of finite values, as in skimage.threshold_otsu."""
    v = values[np.isfinite(values)].astype(np.float64)
    if v.size == 0 or v.min() == v.max():
        raise ValueError("Otsu needs at least two distinct finite values")
    hist, edges = np.histogram(v, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w1 = np.cumsum(hist)  # weight of the class below each candidate cut
    w2 = np.cumsum(hist[::-1])[::-1]
    m1 = np.cumsum(hist * centers) / np.maximum(w1, 1)
    m2 = (np.cumsum((hist * centers)[::-1]) / np.maximum(w2[::-1], 1))[::-1]
    between = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return float(centers[int(np.argmax(between))])


def otsu_vh(s1_db: np.ndarray) -> tuple[np.ndarray, float]:
    """Water where VH is below this chip's own Otsu threshold; returns (mask, threshold dB)."""
    t = otsu_threshold(np.clip(s1_db[VH], -50, 5))
    return s1_db[VH] < t, t


def fixed_vh(s1_db: np.ndarray, threshold_db: float = FIXED_VH_DB) -> np.ndarray:
    """Water where VH < threshold_db (NaN compares False, i.e. not water)."""
    with np.errstate(invalid="ignore"):
        return s1_db[VH] < threshold_db


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


def fold_dir(out: Path, holdout: str) -> Path:
    return out / f"fold_{holdout}"


def run_loco(
    cfg: FloodConfig, chips: list[Chip], out: Path, progress: bool = True, holdouts: list[str] | None = None
) -> dict[str, Any]:
    """Train/score every fold (reusing folds already saved with the same config); write loco.json.

    `holdouts` picks and orders the folds to run (default: all chips); training always uses every other chip,
    so a partial run's folds are the same as a full run's and a later full run reuses them.
    """
    out.mkdir(parents=True, exist_ok=True)
    by_name = {c.name: c for c in chips}
    folds: dict[str, dict[str, Any]] = {}
    for held, _, train_names in leave_one_out(by_name, held_out=holdouts or None):
        done = fold_dir(out, held) / "result.json"
        if done.is_file() and json.loads(done.read_text())["config"] == cfg.to_dict():
            log.info("fold %s: reusing %s", held, done)
        else:
            from .train import save_fold, train_fold  # train imports this module's scoring

            run = train_fold(cfg, chips, held, progress=progress)
            save_fold(run, cfg, done.parent, train_names)
            ious = ", ".join(f"{m} {c.iou:.3f}" for m, c in run.counts.items())
            log.info("fold %s: %.0fs, water IoU %s", held, run.seconds, ious)
        folds[held] = json.loads(done.read_text())
    summary = summarise(cfg, {c.name: folds[c.name] for c in chips if c.name in folds})
    (out / "loco.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def summarise(cfg: FloodConfig, folds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-chip and pooled counts/metrics for every method, plus the training curves."""
    per_chip = {name: counts_from(r) for name, r in folds.items()}
    water = {
        name: (c["model"].tp + c["model"].fn) / max(1, sum(vars(c["model"]).values()))
        for name, c in per_chip.items()
    }
    return {
        "recipe": cfg.recipe,
        "config": cfg.to_dict(),
        "per_chip": {n: {m: c[m].summary() for m in METHODS} for n, c in per_chip.items()},
        "pooled": {m: pooled([c[m] for c in per_chip.values()]).summary() for m in METHODS},
        "water_share": water,
        "otsu_db": {n: r["otsu_db"] for n, r in folds.items()},
        "seconds": {n: r["seconds"] for n, r in folds.items()},
        "params": next(iter(folds.values()))["params"],
        "history": {n: r["history"] for n, r in folds.items()},
    }


def loco_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """loco.json -> {"per_chip": {chip: {method: Counts}}, "pooled": {method: Counts}} for the card."""

    def c(d: dict[str, Any]) -> Counts:
        return Counts(d["tp"], d["fp"], d["fn"], d["tn"])

    return {
        "per_chip": {n: {m: c(v) for m, v in ms.items()} for n, ms in summary["per_chip"].items()},
        "pooled": {m: c(v) for m, v in summary["pooled"].items()},
    }
