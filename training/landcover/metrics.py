"""Multi-class scores from one confusion matrix, so every method and the pooled figure share one code path.

mIoU is the mean IoU over the classes present in the reference labels of the pixels scored (a site's own
classes; for the pooled figure, every class in any held-out site). A class that a method predicts but that
is absent from the labels adds no term of its own, but each such pixel is a miss of its true class.
"""

from __future__ import annotations

import numpy as np

from .data import N_CLASSES, NODATA_CLASS


def confusion(pred: np.ndarray, label: np.ndarray, n: int = N_CLASSES) -> np.ndarray:
    """(n, n) int64 counts, rows = reference class, columns = predicted; label NODATA_CLASS is skipped."""
    keep = label != NODATA_CLASS
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
    ious = class_iou(cm)
    return float(np.mean(list(ious.values()))) if ious else float("nan")


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def summary(cm: np.ndarray) -> dict:
    """JSON-ready scores of one confusion matrix (the matrix itself included)."""
    return {
        "miou": miou(cm),
        "accuracy": accuracy(cm),
        "class_iou": {str(k): v for k, v in class_iou(cm).items()},
        "class_recall": {str(k): v for k, v in class_recall(cm).items()},
        "pixels": int(cm.sum()),
        "confusion": cm.tolist(),
    }
