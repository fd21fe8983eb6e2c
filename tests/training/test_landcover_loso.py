"""Leave-one-site-out: folds never leak the held-out site; majority baseline and mIoU computed correctly."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.training.common.metrics import class_confusion, class_summary
from contrasat.training.landcover import evaluate
from contrasat.training.landcover.config import LandcoverConfig
from contrasat.training.landcover.data import N_CLASSES, NODATA_CLASS, load_sites
from contrasat.training.landcover.models import majority_class, sample_pixels


@pytest.fixture(scope="module")
def sites():
    return load_sites()


def test_folds_never_train_on_the_held_out_site(sites, monkeypatch):
    seen = []
    real = evaluate.fit_predict

    def spy(method, train, test, cfg, seed):
        seen.append((test.name, [s.name for s in train]))
        return real(method, train, test, cfg, seed)

    monkeypatch.setattr(evaluate, "fit_predict", spy)
    results = evaluate.loso(sites, LandcoverConfig(methods=("majority",)))
    assert sorted(t for t, _ in seen) == sorted(s.name for s in sites)  # every site held out once
    for held, train in seen:
        assert held not in train and len(train) == len(sites) - 1
    assert set(results["majority"]["0"]["per_site"]) == {s.name for s in sites}


def test_sampled_training_pixels_come_only_from_training_sites(sites):
    train = [s for s in sites if s.name != "609U_541L_3_0"]  # the only snow site
    _, y = sample_pixels(train, 500, 0)
    assert 7 not in set(y.tolist()) and len(y) == 500 * len(train)


def test_majority_baseline(sites):
    train, test = sites[1:], sites[0]
    counts = np.zeros(N_CLASSES, dtype=int)
    for s in train:
        for c in s.label[s.label > 0].ravel():
            counts[c] += 1
    assert majority_class(train) == int(np.argmax(counts))
    pred = evaluate.fit_predict("majority", train, test, LandcoverConfig(), 0)
    assert (pred == np.argmax(counts)).all()
    # painting a site with one class c: IoU(c) = share of c, every other class 0
    y = test.pixels()[1]
    c = int(np.bincount(y).argmax())
    scores = class_summary(class_confusion(np.full_like(y, c), y, N_CLASSES, NODATA_CLASS))
    share = float(np.mean(y == c))
    assert scores["class_iou"][str(c)] == pytest.approx(share)
    assert scores["miou"] == pytest.approx(share / len(np.unique(y)))


def test_pooled_miou_is_over_summed_confusion():
    a = class_confusion(np.array([1, 1, 2]), np.array([1, 2, 2]), N_CLASSES, NODATA_CLASS)
    b = class_confusion(np.array([2, 2]), np.array([2, 2]), N_CLASSES, NODATA_CLASS)
    pooled = class_summary(a + b)
    # class 1: tp 1, fp 1 -> 0.5; class 2: tp 3, fn 1 -> 0.75
    assert pooled["miou"] == pytest.approx((0.5 + 0.75) / 2)
