"""What separates low-contrast water from the dry land beside it: per feature group, a small classifier
fitted leave-one-region-out (protocol in training/configs/lowcontrast.toml, [study], fixed before the runs).

    contrasat train flood lowcontrast-study --out docs/results

Pixels: the low-contrast water and labelled-dry pixels of the set's windows (lowcontrast.py). Features are
computed on the whole chip or tile (so texture sees across window edges), in dB.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
from scipy.ndimage import uniform_filter
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ...models.levels import level_shift
from ..common.flood_data.regions import Chip, load_region
from .lowcontrast import CONFIG, SetRule, dual_pol_regions, lowcontrast_label, scene_peak, window_corners

LEVEL_RULE = {
    "reference_db": -16.2,
    "bound_db": 7.0,
}  # the ensemble card's VH level rule (the config says so)


def local_stats(band: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and standard deviation of a band over k x k windows."""
    ok = np.isfinite(band)
    v = np.where(ok, band, 0.0).astype(np.float64)
    n = uniform_filter(ok.astype(np.float64), k, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = uniform_filter(v, k, mode="constant") / n
        var = uniform_filter(v * v, k, mode="constant") / n - mean**2
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


def features(s1: np.ndarray, shift_db: float) -> dict[str, np.ndarray]:
    """Every feature the config can name, per pixel of a chip (2, H, W) dB [VV, VH]."""
    vv, vh = s1[0], s1[1]
    out = {"vv": vv, "vh": vh, "vh_aligned": vh + np.float32(shift_db), "vv_minus_vh": vv - vh}
    for name, band in (("vv", vv), ("vh", vh)):
        for k in (5, 9):
            out[f"{name}_mean{k}"], out[f"{name}_std{k}"] = local_stats(band, k)
    return out


def region_pixels(chips: list[Chip], rule: SetRule) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({feature: values}, labels 1/0) of a region's low-contrast water and dry pixels in the set's windows."""
    peak = scene_peak(chips)
    if peak is None:
        return {}, np.zeros(0, np.int64)
    vh = np.concatenate([c.s1[1].ravel() for c in chips])
    shift = level_shift(vh, LEVEL_RULE["reference_db"], LEVEL_RULE["bound_db"])
    cols: dict[str, list[np.ndarray]] = {}
    labels = []
    for chip in chips:
        lab = lowcontrast_label(chip.s1, chip.label, peak, rule.margin_db)
        keep = np.zeros(lab.shape, bool)
        for y, x in window_corners(lab, rule):
            keep[y : y + rule.window, x : x + rule.window] = True
        keep &= lab >= 0
        if not keep.any():
            continue
        for name, f in features(chip.s1, shift).items():
            cols.setdefault(name, []).append(f[keep])
        labels.append(lab[keep])
    if not labels:
        return {}, np.zeros(0, np.int64)
    feats = {k: np.concatenate(v) for k, v in cols.items()}
    ok = np.all([np.isfinite(v) for v in feats.values()], axis=0)
    return {k: v[ok] for k, v in feats.items()}, np.concatenate(labels)[ok].astype(np.int64)


def balanced_draw(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most `per_class` pixels of each class (seeded, sorted)."""
    idx = [
        rng.choice(np.flatnonzero(y == c), min(per_class, int((y == c).sum())), replace=False) for c in (0, 1)
    ]
    return np.sort(np.concatenate(idx))


def classifier(kind: str, seed: int):
    if kind == "logistic":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
        )
    return RandomForestClassifier(
        n_estimators=60,
        max_depth=8,
        min_samples_leaf=20,
        class_weight="balanced",
        random_state=seed,
        n_jobs=1,
    )


def held_out_scores(y: np.ndarray, p: np.ndarray, weight: np.ndarray) -> dict[str, float]:
    """AUC, balanced accuracy and water IoU at p = 0.5; `weight` scales each drawn pixel to its class total."""
    pred = p > 0.5
    tp = float(weight[pred & (y == 1)].sum())
    fp = float(weight[pred & (y == 0)].sum())
    fn = float(weight[~pred & (y == 1)].sum())
    return {
        "auc": float(roc_auc_score(y, p)),
        "balanced_accuracy": float((pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2),
        "iou": tp / (tp + fp + fn) if tp + fp + fn else math.nan,
    }


def run(config: Path = CONFIG) -> dict[str, Any]:
    """Every group x classifier x held-out region of the protocol: {"regions", "pixels", "results"}."""
    with config.open("rb") as f:
        cfg = tomllib.load(f)
    rule, st = SetRule(**cfg["set"]), cfg["study"]
    rng = np.random.default_rng(st["seed"])
    data: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    for r in dual_pol_regions():
        feats, y = region_pixels(load_region(r), rule)
        if (y == 1).sum() >= rule.min_lc_pixels:
            data[r.name] = (feats, y)
    fit_idx = {n: balanced_draw(y, st["per_class"], rng) for n, (_, y) in data.items()}
    score_idx = {n: balanced_draw(y, st["score_per_class"], rng) for n, (_, y) in data.items()}
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for group, names in st["groups"].items():
        for kind in st["classifiers"]:
            per_region = {}
            for held in data:
                train = [n for n in data if n != held]
                x = np.concatenate([np.stack([data[n][0][f][fit_idx[n]] for f in names], 1) for n in train])
                y = np.concatenate([data[n][1][fit_idx[n]] for n in train])
                model = classifier(kind, st["seed"]).fit(x, y)
                feats, yh = data[held]
                i = score_idx[held]
                p = model.predict_proba(np.stack([feats[f][i] for f in names], 1))[:, 1]
                totals = np.array([(yh == 0).sum(), (yh == 1).sum()])
                drawn = np.array([(yh[i] == 0).sum(), (yh[i] == 1).sum()])
                per_region[held] = held_out_scores(yh[i], p, (totals / drawn)[yh[i]])
            results.setdefault(group, {})[kind] = per_region
    pixels = {
        n: {"lowcontrast_water": int((y == 1).sum()), "dry": int((y == 0).sum())}
        for n, (_, y) in data.items()
    }
    protocol = {k: v for k, v in st.items() if k != "groups"}
    return {
        "config": config.name,
        "protocol": protocol,
        "groups": st["groups"],
        "pixels": pixels,
        "results": results,
    }
