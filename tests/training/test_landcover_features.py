"""Per-pixel features: numpy against a written-out reference, torch (on normalised input) against numpy."""

from __future__ import annotations

import numpy as np
import torch
from contrasat.models.bands import S2L1C_BANDS
from contrasat.training.landcover.data import CLIP, load_terramind
from contrasat.training.landcover.features import FEATURE_NAMES, features, torch_features
from contrasat.training.landcover.models import norm_stats


def _band(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, S2L1C_BANDS.index(name)].astype(np.float64)


def test_features_match_reference():
    x, _ = load_terramind("282D_485L_3_3").pixels()
    f = features(x)
    b02, b03, b04, b08, b11, b12 = (_band(x, n) for n in ("B02", "B03", "B04", "B08", "B11", "B12"))
    expected = {
        "B02": b02 / 1e4, "B11": b11 / 1e4,
        "NDVI": (b08 - b04) / (b08 + b04 + 1), "NDWI": (b03 - b08) / (b03 + b08 + 1),
        "MNDWI": (b03 - b11) / (b03 + b11 + 1), "NDBI": (b11 - b08) / (b11 + b08 + 1),
        "NBR": (b08 - b12) / (b08 + b12 + 1),
    }  # fmt: skip
    for name, ref in expected.items():
        np.testing.assert_allclose(f[:, FEATURE_NAMES.index(name)], ref, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not {"B01", "B09", "B10"} & set(FEATURE_NAMES)  # atmospheric bands are not features
    assert np.isfinite(features(np.zeros((3, 13), dtype=np.float32))).all()


def test_torch_features_equal_numpy_on_normalised_input():
    site = load_terramind("433D_629L_3_1")
    x, _ = site.pixels()
    mean, std = norm_stats(x)
    module = torch_features()(mean, std, CLIP)
    xin = (site.reflectance - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    with torch.no_grad():
        got = module(torch.from_numpy(xin[None].astype(np.float32)))[0].numpy()
    ref = features(site.reflectance.reshape(13, -1).T).T.reshape(got.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
