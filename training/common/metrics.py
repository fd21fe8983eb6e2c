"""Metrics every kit scores with: binary water counts (one code path for the model and every baseline) and
macro F1 over classes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

IGNORE = -1  # label value excluded from losses and metrics (nodata, unlabelled)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def iou(self) -> float:
        """Water IoU; NaN when neither label nor prediction has water (nothing to score)."""
        union = self.tp + self.fp + self.fn
        return self.tp / union if union else math.nan

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else math.nan

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / total if total else math.nan

    def summary(self) -> dict[str, float | int]:
        return {**asdict(self), "iou": self.iou, "f1": self.f1, "accuracy": self.accuracy}


def confusion(pred_water: np.ndarray, label: np.ndarray, valid: np.ndarray | None = None) -> Counts:
    """Counts over pixels with label 0/1 (and `valid`, e.g. finite S1); label -1 is ignored."""
    keep = (label == 0) | (label == 1)
    if valid is not None:
        keep &= valid
    p = pred_water.astype(bool)[keep]
    t = label[keep] == 1
    return Counts(
        tp=int(np.sum(p & t)), fp=int(np.sum(p & ~t)), fn=int(np.sum(~p & t)), tn=int(np.sum(~p & ~t))
    )


def pooled(counts: list[Counts]) -> Counts:
    """Pooled counts: pooled IoU = sum of intersections / sum of unions over the chips."""
    total = Counts()
    for c in counts:
        total = total + c
    return total


def macro_f1(pred: np.ndarray, true: np.ndarray, n_classes: int) -> float:
    """Mean F1 over classes present in `true`."""
    scores = []
    for c in range(n_classes):
        if not np.any(true == c):
            continue
        tp = np.sum((pred == c) & (true == c))
        denom = np.sum(pred == c) + np.sum(true == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))
