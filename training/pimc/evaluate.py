"""PIMC forecasting scores: RMSE over cloud-free target dates, and the persistence baseline."""

from __future__ import annotations

import numpy as np

from .data import FORECAST, PixelSet


def rmse(pred: np.ndarray, true: np.ndarray, ok: np.ndarray) -> float:
    """RMSE over valid (cloud-free) target observations only."""
    return float(np.sqrt(np.mean((pred[ok] - true[ok]) ** 2)))


def persistence_rmse(ps: PixelSet, split: int = 2) -> float:
    """Last gap-filled history value repeated for the 10 target dates."""
    rows = np.flatnonzero(ps.split == split)
    pred = np.repeat(ps.last[rows, None], FORECAST, axis=1)
    return rmse(pred, ps.future[rows], ps.future_ok[rows])
