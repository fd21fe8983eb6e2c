"""classify-series checked pixel by pixel against a reference written from the card's series contract
alone (numpy interpolation, the plot formula, ONNX Runtime on the bundled model), on the bundled real stack.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from contrasat.models.card import read_card
from contrasat.models.execution import Execution
from contrasat.models.series import SERIES_KEY, classify_series

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
MODEL = REPO / "models" / "weights" / "pixel_ts_landcover.onnx"


def _reference(values: np.ndarray, days: np.ndarray, n_steps: int, mean: float, std: float) -> np.ndarray:
    """(N, T) index series with NaN gaps -> (N, 1, S, S) normalised plots, one pixel at a time."""
    grid = np.linspace(days[0], days[-1], n_steps)
    plots = np.empty((len(values), 1, n_steps, n_steps), dtype=np.float32)
    for i, series in enumerate(values):
        ok = np.isfinite(series)
        # invalid dates: linear between valid neighbours, ends held; valid dates keep their value
        filled = np.where(ok, series, np.interp(days, days[ok], series[ok]))
        steps = np.interp(grid, days, filled)  # the polyline through the dated points (same-day dates too)
        plots[i, 0] = (np.abs(steps[:, None] - steps[None, :]) - mean) / std
    return plots


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    """(classes (H, W) with 255 for no valid date, top-two probability margin (H, W))."""
    card = read_card(MODEL)
    contract, spec = card.training[SERIES_KEY], card.inputs[0]
    assert contract["indices"] == ["NDVI"] and spec.clip is None  # what this reference implements
    with rasterio.open(STACK) as src:
        cube = src.read().astype(np.float64)  # (T, H, W) NDVI, NaN = invalid date
        stamps = [date.fromisoformat(s[:10]) for s in src.descriptions]
    days = np.array([(d - stamps[0]).days for d in stamps], dtype=np.float64)
    assert np.all(np.diff(days) >= 0) and np.any(np.diff(days) == 0)  # sorted; one day holds two dates
    t, h, w = cube.shape
    series = cube.reshape(t, h * w).T
    has_data = np.isfinite(series).any(axis=1)
    plots = _reference(series[has_data], days, int(contract["n_steps"]), spec.mean[0], spec.std[0])
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    probs = np.concatenate(
        [sess.run(None, {spec.name: plots[s : s + 2048]})[0] for s in range(0, len(plots), 2048)]
    )
    classes = np.full(h * w, 255, dtype=np.uint8)
    classes[has_data] = probs.argmax(axis=1)
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = np.full(h * w, np.inf)
    margin[has_data] = top2[:, 1] - top2[:, 0]
    return classes.reshape(h, w), margin.reshape(h, w)


@pytest.mark.parametrize("block", [64, 48])  # neither divides the 101 x 100 patch: partial edge blocks
def test_every_pixel_matches_the_reference(reference, tmp_path, block):
    expected, margin = reference
    result = classify_series(STACK, tmp_path / "lc.tif", model=MODEL, config=Execution(tile=block))
    with rasterio.open(result.output) as out:
        got = out.read(1)
    assert got.shape == expected.shape
    decided = margin > 1e-4  # float32 vs float64 arithmetic may only flip a near tie
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(got[decided], expected[decided])
    assert len(np.unique(expected[expected != 255])) >= 2  # a real map, not one class everywhere
