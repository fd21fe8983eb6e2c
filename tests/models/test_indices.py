"""Vegetation indices, offset detection, validity and the gap-filling rule, on values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.models.indices import (
    compute_index,
    detect_offset,
    evi,
    fill_gaps,
    ndvi,
    resample_series,
    savi,
    to_reflectance,
)


def test_indices_known_values():
    blue, red, nir = np.float32([0.05]), np.float32([0.1]), np.float32([0.5])
    assert ndvi(red, nir)[0] == pytest.approx(0.4 / 0.6, abs=1e-6)
    # 2.5 * 0.4 / (0.5 + 0.6 - 0.375 + 1) = 1 / 1.725
    assert evi(blue, red, nir)[0] == pytest.approx(1 / 1.725, abs=1e-6)
    assert savi(red, nir)[0] == pytest.approx(1.5 * 0.4 / 1.1, abs=1e-6)
    bands = {"B02": blue, "B04": red, "B08": nir}
    assert compute_index("savi", bands)[0] == pytest.approx(savi(red, nir)[0])
    with pytest.raises(ValueError, match="unknown index"):
        compute_index("NDWI", bands)


def test_ndvi_undefined_is_nan():
    out = ndvi(np.float32([0.0, 0.2]), np.float32([0.0, 0.2]))
    assert np.isnan(out[0]) and out[1] == 0.0


def test_offset_only_when_the_data_shows_it():
    rng = np.random.default_rng(0)
    dark = rng.integers(200, 1500, size=(64, 64)).astype(np.float32)  # plain L1C blue band
    assert detect_offset(dark) == 0.0
    assert detect_offset(dark + 1000) == 1000.0  # baseline >= 04.00
    assert detect_offset(np.zeros((4, 4))) == 0.0  # all nodata
    refl = to_reflectance(np.array([2000], np.uint16), offset=1000.0)
    assert refl[0] == pytest.approx(0.1)


def test_fill_gaps_interpolates_in_time_and_holds_ends():
    x = np.array([[np.nan, 0.2, np.nan, 0.8, np.nan], [np.nan] * 5], np.float32)
    times = np.array([0, 10, 20, 40, 50.0])
    out = fill_gaps(x, times=times)
    # 0.2 + (0.8 - 0.2) * (20 - 10) / (40 - 10) = 0.4; ends hold the nearest valid value
    assert out[0].tolist() == pytest.approx([0.2, 0.2, 0.4, 0.8, 0.8])
    assert np.all(np.isnan(out[1]))
    masked = fill_gaps(np.float32([0.1, 0.9, 0.3]), valid=np.array([True, False, True]))
    assert masked.tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_resample_to_equal_steps():
    x = np.float32([[0.0, 1.0, 3.0]])
    out = resample_series(x, np.array([0, 1, 3.0]), 4)  # grid 0, 1, 2, 3
    assert out[0].tolist() == pytest.approx([0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        resample_series(x, np.array([0, 2, 1.0]), 4)
