"""The classifier on the features, one of two methods, and its validation on whole label features held back
(group k-fold), never on single pixels:
- `bands-context-forest` (the default, the own-classes study's winner `rf_context`): a random forest, 100 trees
  with scikit-learn's defaults as the study ran it, on the bands + neighbourhood means (models/own_context.py);
- `encoder-head`: multinomial logistic regression on the standardised features of the pre-trained encoders.

Neighbouring pixels of one polygon are nearly copies of each other: a pixel-wise split would score the head
on pixels whose twins trained it. Holding back whole polygons measures what an analyst needs: how well
the map does on a field nobody labelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .card import ClassInfo
from .notes import Note, warning

FOREST = "bands-context-forest"
ENCODER_HEAD = "encoder-head"
METHODS = (FOREST, ENCODER_HEAD)
TREES = 100  # the study's forest (training/configs/ownclasses.toml [rf]): depth and leaves unlimited
C_REGULARISATION = 1.0  # inverse L2 strength on standardised features: the scikit-learn default
MAX_ITER = 500
FOLDS = 5
MIN_CLASS_PIXELS = 50  # fewer labelled pixels than this in a class: warn


@dataclass
class Head:
    """The fitted head folded to one affine map on raw features: logits = weight @ x + bias (C classes)."""

    weight: np.ndarray  # (C, D) float32
    bias: np.ndarray  # (C,) float32
    pipeline: object  # the scikit-learn pipeline (scaler + logistic regression) it was folded from

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(x)


@dataclass
class Forest:
    """The fitted random forest (scikit-learn); exported as an ONNX tree ensemble (own_export)."""

    model: object

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x)


def _forest(seed: int = 0):
    from sklearn.ensemble import RandomForestClassifier

    # n_jobs=1 as in the study; the trees do not depend on it (random_state fixes them)
    return RandomForestClassifier(n_estimators=TREES, max_features="sqrt", min_samples_leaf=1, random_state=seed,
                                  n_jobs=1)  # fmt: skip


def _classifier(method: str, seed: int = 0):
    return _forest(seed) if method == FOREST else _pipeline(seed)


def _pipeline(seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logistic = LogisticRegression(
        C=C_REGULARISATION, max_iter=MAX_ITER, class_weight="balanced", random_state=seed
    )
    return make_pipeline(StandardScaler(), logistic)


def one_thread():
    """BLAS on one thread while fitting: the matrices are small (pixels x ~100 features), and several BLAS
    threads on a busy machine spend their time waiting for each other (18 x slower measured on 2 cores)."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    return threadpool_limits(limits=1, user_api="blas")


def fit_head(x: np.ndarray, y: np.ndarray, method: str = ENCODER_HEAD) -> Head | Forest:
    """Fit the classifier on every labelled pixel; the logistic head with the standardisation folded in."""
    if method == FOREST:
        return Forest(_forest().fit(x, y))
    with one_thread():
        pipe = _pipeline().fit(x, y)
    scaler, logistic = pipe[0], pipe[-1]
    coef = logistic.coef_ / scaler.scale_[None, :]
    bias = logistic.intercept_ - coef @ scaler.mean_
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps one logit; softmax([0, z]) = [1 - s(z), s(z)]
        coef = np.vstack([np.zeros_like(coef), coef])
        bias = np.array([0.0, bias[0]])
    return Head(coef.astype(np.float32), bias.astype(np.float32), pipe)


def _fold_predictions(x: np.ndarray, y: np.ndarray, train: np.ndarray, method: str) -> np.ndarray:
    """Class predicted for the held-back pixels by a classifier fitted on `train` (one class left: that one)."""
    present = np.unique(y[train])
    if len(present) == 1:
        return np.full(int((~train).sum()), present[0])
    return _classifier(method).fit(x[train], y[train]).predict(x[~train])


def validate(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, classes: list[ClassInfo], method: str = ENCODER_HEAD
) -> dict:
    """Scores on label features held back whole: StratifiedGroupKFold over features; pooled over folds."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    folds = min(FOLDS, n_groups)
    predicted = np.empty_like(y)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0)
    import warnings

    with warnings.catch_warnings():  # "least populated class has only n members": reported as a note instead
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(x, y, groups))
    with one_thread():
        for train_idx, test_idx in splits:
            train = np.zeros(len(y), dtype=bool)
            train[train_idx] = True
            predicted[test_idx] = _fold_predictions(x, y, train, method)
    labels = [c.value for c in classes]
    f1 = f1_score(y, predicted, labels=labels, average=None, zero_division=0)
    return {
        "method": f"{folds}-fold cross-validation holding back whole label features (polygons or points)",
        "folds": folds,
        "held_out_pixels": len(y),
        "overall_accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(np.mean(f1)),
        "f1": {c.name: float(v) for c, v in zip(classes, f1, strict=True)},
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        "confusion_axes": "rows: labelled class, columns: mapped class (class order of the card)",
    }


def label_warnings(
    classes: list[ClassInfo], pixels: list[int], features: list[int], points: bool
) -> list[Note]:
    """Warnings for classes with few labelled pixels or a single feature (not validated on held-back ones)."""
    notes = []
    what = "point" if points else "polygon"
    for c, n_px, n_feat in zip(classes, pixels, features, strict=True):
        if n_px < MIN_CLASS_PIXELS:
            notes.append(warning(
                f"class '{c.name}' has only {n_px} labelled pixels (fewer than {MIN_CLASS_PIXELS}): "
                f"its map and its scores are unreliable; draw more {what}s"
            ))  # fmt: skip
        if n_feat == 1:
            notes.append(warning(
                f"class '{c.name}' has a single {what}: held back, it leaves the class untrained, so its "
                f"validation score says little; draw at least two {what}s per class"
            ))  # fmt: skip
    return notes
