"""Recurrence plots: equal to pyts on real NDVI series, shapes, thresholds and argument checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.indices import fill_gaps
from contrasat.models.recurrence import recurrence_plot

STACK = Path(__file__).resolve().parents[2] / "resources" / "series" / "slovenia_ndvi_stack.tif"


@pytest.fixture(scope="module")
def ndvi_series() -> np.ndarray:
    """200 real gap-filled NDVI series (68 dates) from the bundled Slovenia stack."""
    assert STACK.is_file(), f"bundled series missing from the repository: {STACK}"
    with rasterio.open(STACK) as src:
        data = src.read()
    series = data.reshape(data.shape[0], -1).T[::50][:200]
    return fill_gaps(series)


@pytest.fixture(scope="module")
def pyts_rp():
    """pyts' RecurrencePlot with its numba kernels left interpreted: the same code, without a ~15-50 s
    compile at import on a loaded 2-core machine (float64 |a - b| is the same compiled or not)."""
    numba = pytest.importorskip("numba", reason="pyts (dev extra) and numba not installed")
    saved = numba.config.DISABLE_JIT
    numba.config.DISABLE_JIT = True
    try:
        image = pytest.importorskip("pyts.image", reason="pyts (dev extra) not installed")
    finally:
        numba.config.DISABLE_JIT = saved
    return image.RecurrencePlot


@pytest.mark.parametrize(
    "ours, theirs",
    [
        ({}, {}),
        ({"eps": 0.12}, {"threshold": 0.12}),
        ({"percentage": 20}, {"threshold": "point", "percentage": 20}),
        ({"percentage": 33.3}, {"threshold": "point", "percentage": 33.3}),
        ({"percentage": 25, "mode": "distance"}, {"threshold": "distance", "percentage": 25}),
    ],
)
def test_equals_pyts_on_real_ndvi(pyts_rp, ndvi_series, ours, theirs):
    ref = pyts_rp(dimension=1, time_delay=1, **theirs).transform(ndvi_series)
    assert np.array_equal(recurrence_plot(ndvi_series, dtype=np.float64, **ours), ref)
    fast = recurrence_plot(ndvi_series, **ours)
    assert fast.dtype == np.float32
    if not ours:
        np.testing.assert_allclose(fast, ref, atol=1e-6)
    else:  # float32 distances may flip a comparison that sits exactly on the threshold, nothing more
        assert np.mean(fast != ref) < 1e-4


def test_shapes_symmetry_and_leading_axes():
    x = np.random.default_rng(0).random((3, 4, 7)).astype(np.float32)
    rp = recurrence_plot(x)
    assert rp.shape == (3, 4, 7, 7)
    assert np.allclose(rp, np.swapaxes(rp, -1, -2)) and np.all(np.diagonal(rp, axis1=-2, axis2=-1) == 0)
    assert recurrence_plot(x[0, 0]).shape == (7, 7)
    out = np.empty((3, 4, 7, 7), np.float32)
    assert recurrence_plot(x, out=out) is out


def test_thresholds_are_strict_and_binary():
    x = np.float32([0.0, 0.1, 0.3])
    assert recurrence_plot(x, eps=0.2).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    # distances 0, .1, .2, .3 (max .3): 50% of max = 0.15, strict '<' keeps 0 and 0.1
    assert recurrence_plot(x, percentage=50, mode="distance").tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert set(np.unique(recurrence_plot(x, percentage=60))) <= {0.0, 1.0}


def test_bad_arguments():
    x = np.zeros(5)
    for kwargs in (
        {"eps": 0.1, "percentage": 5},
        {"eps": 0},
        {"percentage": 101},
        {"percentage": 5, "mode": "x"},
    ):
        with pytest.raises(ValueError):
            recurrence_plot(x, **kwargs)
    with pytest.raises(ValueError):
        recurrence_plot(x, out=np.empty((4, 4), np.float32))
