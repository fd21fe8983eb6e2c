"""LORO figures from saved counts: IoU over count dicts, pooling over regions, mean and sd over seeds, and the
number format of the results pages (both kits' pages read the same results files)."""

from __future__ import annotations

import math

import numpy as np

MARGIN = 0.05  # the protocol's rule: never worse than VH < -20 dB by more than this on a held-out region
COUNT_KEYS = ("tp", "fp", "fn", "tn")


def iou(c: dict | None) -> float:
    """Water IoU of a count dict; NaN when it is missing or has nothing to score."""
    if not c:
        return math.nan
    u = c["tp"] + c["fp"] + c["fn"]
    return c["tp"] / u if u else math.nan


def format_score(x: float | None) -> str:
    """A score as the results pages print it: three decimals, a dash when undefined."""
    return "—" if x is None or math.isnan(x) else f"{x:.3f}"


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
    vals = [iou(c) for c in per_seed]
    ok = [v for v in vals if not math.isnan(v)]
    if not ok:
        return math.nan, math.nan, "—"
    return float(np.mean(ok)), float(np.std(ok)), " / ".join(format_score(v) for v in vals)
