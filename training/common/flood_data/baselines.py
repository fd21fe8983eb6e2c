"""The threshold baselines every flood model is scored against: VH < -20 dB and Otsu per chip (S1 dB).

In common because the flood and contrastive kits score the same baselines on the same pixels.
"""

from __future__ import annotations

import numpy as np

from .regions import Chip, present_bands

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


def otsu_mask(chip: Chip) -> np.ndarray:
    """Otsu on this chip's VH (its VV when it has no VH); all dry when the band is constant."""
    band = 1 if 1 in present_bands(chip) else 0
    values = np.clip(chip.s1[band], -50, 5)
    try:
        t = otsu_threshold(values[chip.valid])
    except ValueError:
        return np.zeros(chip.label.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return values < t
