"""Metrics every kit scores with: binary water counts (one code path for the model and every baseline),
macro F1 over classes, and multi-class confusion matrices with IoU per class present in the labels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

IGNORE = -1  # label value excluded from losses and metrics (nodata, unlabelled)


def counts_iou(c: dict | None) -> float:
    """Water IoU of stored counts ({"tp", "fp", "fn", ...}); NaN when missing or nothing to score."""
    if not c:
        return math.nan
    union = c["tp"] + c["fp"] + c["fn"]
    return c["tp"] / union if union else math.nan


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


def class_confusion(pred: np.ndarray, label: np.ndarray, n: int, skip: int | None = None) -> np.ndarray:
    """(n, n) int64 counts, rows = reference class, columns = predicted; labels equal to `skip` are left out."""
    keep = label != skip if skip is not None else np.ones(label.shape, dtype=bool)
    idx = label[keep].astype(np.int64) * n + pred[keep].astype(np.int64)
    return np.bincount(idx, minlength=n * n).reshape(n, n)


def class_iou(cm: np.ndarray) -> dict[int, float]:
    """IoU of every class present in the labels (rows with pixels)."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    return {int(c): float(tp[c] / union[c]) for c in np.nonzero(cm.sum(1))[0]}


def class_recall(cm: np.ndarray) -> dict[int, float]:
    """Recall (producer's accuracy) of every class present in the labels."""
    return {int(c): float(cm[c, c] / cm[c].sum()) for c in np.nonzero(cm.sum(1))[0]}


def miou(cm: np.ndarray) -> float:
    """Mean IoU over the classes present in the labels: a predicted class the labels lack adds no term."""
    ious = class_iou(cm)
    return float(np.mean(list(ious.values()))) if ious else float("nan")


def accuracy(cm: np.ndarray) -> float:
    """Share of labelled pixels on the diagonal."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def class_summary(cm: np.ndarray) -> dict:
    """JSON-ready scores of one confusion matrix (the matrix itself included)."""
    return {
        "miou": miou(cm),
        "accuracy": accuracy(cm),
        "class_iou": {str(k): v for k, v in class_iou(cm).items()},
        "class_recall": {str(k): v for k, v in class_recall(cm).items()},
        "pixels": int(cm.sum()),
        "confusion": cm.tolist(),
    }
