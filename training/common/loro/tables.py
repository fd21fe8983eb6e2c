"""LORO figures from saved counts: IoU over count dicts, pooling over regions, mean and sd over seeds (both
kits' results pages read the same results files)."""

from __future__ import annotations

import math

import numpy as np

from ..figures import format_score
from ..metrics import counts_iou

MARGIN = 0.05  # the protocol's rule: never worse than VH < -20 dB by more than this on a held-out region
COUNT_KEYS = ("tp", "fp", "fn", "tn")


def add_counts(a: dict | None, b: dict | None) -> dict | None:
    """Sum of two count dicts; None when either is missing (a method not scored on a region)."""
    if a is None or b is None:
        return None
    return {k: a[k] + b[k] for k in COUNT_KEYS}


def pooled(rows: dict, names: list[str], method: str, k: int) -> dict | None:
    """Counts of `method` in seed `k` summed over the regions `names` of `rows` ({region: {"seeds": [...]}})."""
    total: dict | None = dict.fromkeys(COUNT_KEYS, 0)
    for r in names:
        seeds = rows[r]["seeds"]
        if k >= len(seeds) or seeds[k].get(method) is None:
            return None
        total = add_counts(total, seeds[k][method])
    return total


def seeds_iou(per_seed: list[dict | None]) -> tuple[float, float, str]:
    """Mean and sd of the IoU over seeds, and the per-seed values as printed."""
    vals = [counts_iou(c) for c in per_seed]
    ok = [v for v in vals if not math.isnan(v)]
    if not ok:
        return math.nan, math.nan, "—"
    return float(np.mean(ok)), float(np.std(ok)), " / ".join(format_score(v) for v in vals)
