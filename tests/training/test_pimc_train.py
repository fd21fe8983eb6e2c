"""PIMC downstream loops on the real patch: the kept model is the best-validation epoch, scored on test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from contrasat.training.pimc.data import build_pixels, load_slovenia
from contrasat.training.pimc.evaluate import persistence_rmse
from contrasat.training.pimc.train import (
    Norm,
    PimcConfig,
    inputs,
    make_encoder,
    train_classifier,
    train_forecaster,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pixels():
    return build_pixels(load_slovenia())


@pytest.mark.parametrize("freeze", [False, True])
def test_classifier_returns_the_scored_epoch(pixels, freeze):
    norm = Norm.fit(pixels, np.flatnonzero(pixels.split == 0))
    torch.manual_seed(1)
    cfg = PimcConfig(epochs=2, probe_steps=30)
    scores, model = train_classifier(pixels, "rp", make_encoder("rp", 1), freeze, cfg, 0, norm)
    assert set(scores) == {"val_f1", "accuracy", "macro_f1"} and 0 <= scores["macro_f1"] <= 1
    test = np.flatnonzero((pixels.split == 2) & (pixels.target >= 0))
    with torch.no_grad():
        pred = model(inputs(pixels, "rp", norm)[test]).argmax(1).numpy()
    # the model handed back is the one whose test accuracy was reported (best validation epoch)
    assert np.mean(pred == pixels.target[test]) == pytest.approx(scores["accuracy"])


def test_forecaster_scores_are_rmse_of_ndvi(pixels):
    norm = Norm.fit(pixels, np.flatnonzero(pixels.split == 0))
    torch.manual_seed(1)
    cfg = PimcConfig(epochs=2)
    scores = train_forecaster(pixels, "raw", make_encoder("raw", 1), False, cfg, 0, norm)
    assert set(scores) == {"val_rmse", "rmse"}
    assert 0 < scores["rmse"] < 3 * persistence_rmse(pixels)  # NDVI units, same order as persistence
