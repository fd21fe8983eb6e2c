"""Does the pre-event scene help? OMBRIA's before/after pairs, a small per-pixel classifier with and without
the before band, leave-one-group-out over OMBRIA's groups (protocol: training/configs/lowcontrast.toml,
[ombria], fixed before the runs). A study only: the shipped model is not changed by it.

Both images are mapped to dB (VV) with the OMBRIA calibration; labels are those the LORO uses
(regions.ombria_chip: flood 1, dry 0, dark before and not flood -1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from ..common.flood_data import ombria
from ..common.flood_data.regions import OMBRIA_REGIONS, calibration, data_root, ombria_chip, to_db
from ..common.metrics import Counts, confusion
from .lowcontrast import CONFIG
from .lowcontrast_study import balanced_draw, classifier, local_stats


def place_features(place: ombria.OmbriaPlace, vv_map: dict) -> dict[str, np.ndarray]:
    """Per-pixel features of one place in dB: after VV and its 5x5 texture, before VV, its mean, the change."""
    return db_features(to_db(place.after, vv_map), to_db(place.before, vv_map))


def db_features(after: np.ndarray, before: np.ndarray) -> dict[str, np.ndarray]:
    """The same features from both dates already in dB (VV)."""
    out = {"vv": after, "pre_vv": before, "vv_minus_pre": after - before}
    out["vv_mean5"], out["vv_std5"] = local_stats(after, 5)
    out["pre_vv_mean5"], _ = local_stats(before, 5)
    return out


def group_pixels(group: str, step: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({feature: values}, labels 0/1) over every labelled pixel of every `step`-th place of a group."""
    maps = calibration()["ombria"]
    cols: dict[str, list[np.ndarray]] = {}
    labels = []
    for place in ombria.load_group(data_root(), OMBRIA_REGIONS[group], step):
        lab = ombria_chip(place, maps).label
        keep = lab >= 0
        for name, f in place_features(place, maps["VV"]).items():
            cols.setdefault(name, []).append(f[keep])
        labels.append(lab[keep])
    return {k: np.concatenate(v) for k, v in cols.items()}, np.concatenate(labels).astype(np.int64)


def run(config: Path = CONFIG) -> dict[str, Any]:
    """{"groups", "pixels", "results": {variant: {group: {"iou", counts}}}} of the protocol."""
    with config.open("rb") as f:
        cfg = tomllib.load(f)["ombria"]
    rng = np.random.default_rng(cfg["seed"])
    data = {g: group_pixels(g, cfg["step"]) for g in cfg["groups"]}
    fit_idx = {g: balanced_draw(y, cfg["per_class"], rng) for g, (_, y) in data.items()}
    score_idx = {g: np.sort(rng.choice(len(y), min(cfg["score_pixels"], len(y)), replace=False))
                 for g, (_, y) in data.items()}  # fmt: skip
    results: dict[str, dict[str, dict[str, float]]] = {}
    for variant in ("after", "with_before"):
        names = cfg[variant]
        for held in data:
            train = [g for g in data if g != held]
            x = np.concatenate([np.stack([data[g][0][f][fit_idx[g]] for f in names], 1) for g in train])
            y = np.concatenate([data[g][1][fit_idx[g]] for g in train])
            model = classifier(cfg["classifier"], cfg["seed"]).fit(x, y)
            feats, yh = data[held]
            i = score_idx[held]
            pred = model.predict_proba(np.stack([feats[f][i] for f in names], 1))[:, 1] > 0.5
            c: Counts = confusion(pred, yh[i])
            results.setdefault(variant, {})[held] = {
                "iou": c.iou,
                "tp": c.tp,
                "fp": c.fp,
                "fn": c.fn,
                "tn": c.tn,
            }
    pooled = {v: sum((Counts(**{k: r[k] for k in ("tp", "fp", "fn", "tn")}) for r in res.values()), Counts()).iou
              for v, res in results.items()}  # fmt: skip
    pixels = {g: {"flood": int((y == 1).sum()), "dry": int((y == 0).sum())} for g, (_, y) in data.items()}
    protocol = {k: cfg[k] for k in ("seed", "step", "per_class", "score_pixels", "classifier")}
    return {
        "protocol": protocol,
        "features": {v: cfg[v] for v in results},
        "pixels": pixels,
        "results": results,
        "pooled_iou": pooled,
    }
