"""Scene level alignment (models/levels.py) on real labelled pixels of the flood stress fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models import levels
from contrasat.models.errors import ModelError
from contrasat.models.levels import level_shift, scene_shift
from contrasat.models.pipeline import map_floods
from runtime_helpers import REPO, S1_SAMPLE, make_model, s1_spec

FIXTURE = REPO / "tests" / "fixtures" / "flood_stress" / "stress.npz"
REFERENCE, BOUND = -16.2, 7.0


@pytest.fixture(scope="module")
def fx() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as f:
        return {k: f[k].astype(np.float32) if f[k].dtype == np.float16 else f[k] for k in f.files}


@pytest.mark.parametrize("db", [-3.0, -1.5, 1.5, 3.0])
def test_a_common_offset_is_undone_exactly_on_mixed_crops(fx, db):
    """Stress set (c): six real crops (18-60 % water) under a common offset."""
    for crop in fx["bc_s1"]:
        before = level_shift(crop[1], REFERENCE, BOUND)
        assert level_shift(crop[1] + np.float32(db), REFERENCE, BOUND) == pytest.approx(before - db)


def test_whole_water_tiles_are_never_moved(fx):
    """Open water has no dry-land peak in the window: alignment must not turn it into land."""
    for source in ("sen1floods11", "ETCI_northal"):
        for tile in fx[f"a_water_{source}"]:
            assert level_shift(tile[1], REFERENCE, BOUND) <= 0.0, source


def test_dry_tiles_move_towards_the_reference(fx):
    tiles = fx["a_dry_sen1floods11"][:, 1]
    shifts = np.array([level_shift(t, REFERENCE, BOUND) for t in tiles])
    medians = np.array([np.nanmedian(t) for t in tiles])
    assert np.abs(shifts).max() <= BOUND
    assert np.std(medians + shifts) < np.std(medians)  # aligned scenes agree better


def test_no_band_no_pixels_no_rule():
    vh_missing = np.stack([np.full((64, 64), -10.0), np.full((64, 64), np.nan)]).astype(np.float32)
    rule = {"band": "VH", "reference_db": REFERENCE, "bound_db": BOUND}
    assert scene_shift(vh_missing, ["VV", "VH"], rule) == 0.0
    assert scene_shift(vh_missing, ["VV", "VH"], None) == 0.0
    assert level_shift(np.full(10, -16.0), REFERENCE, BOUND) == 0.0  # too few pixels to see a peak


def _level_model(path, rule) -> object:
    spec = s1_spec()
    spec.level = rule
    return make_model(path, [spec])


@pytest.mark.parametrize("db", [-3.0, 3.0])
def test_the_runtime_undoes_a_calibration_offset_for_a_model_with_a_level_rule(tmp_path, db):
    """The real sample chip offset by +-3 dB maps as the chip itself does, with a note saying so;
    without the rule the same offset changes the map."""
    rule = {"band": "VH", "reference_db": REFERENCE, "bound_db": BOUND}
    aligned, plain = (
        _level_model(tmp_path / "lv.onnx", rule),
        make_model(tmp_path / "plain.onnx", [s1_spec()]),
    )
    with rasterio.open(S1_SAMPLE) as src:
        profile, data = src.profile, src.read()
    moved = tmp_path / "moved.tif"
    with rasterio.open(moved, "w", **profile) as dst:
        dst.write(data + np.float32(db))
    maps = {}
    for name, model in (("aligned", aligned), ("plain", plain)):
        for label, path in (("as_given", S1_SAMPLE), ("moved", moved)):
            result = map_floods(path, tmp_path / f"{name}_{label}.tif", model=model)
            with rasterio.open(result.output) as f:
                maps[name, label] = f.read(1)
            if (name, label) == ("aligned", "moved"):
                assert any("scene level alignment" in str(n) for n in result.notes)
    valid = maps["aligned", "as_given"] != 255
    assert np.mean(maps["aligned", "moved"][valid] == maps["aligned", "as_given"][valid]) > 0.999
    assert np.mean(maps["plain", "moved"][valid] != maps["plain", "as_given"][valid]) > 0.02


@pytest.mark.parametrize(
    "rule",
    [
        {"band": "HH", "reference_db": -16.0, "bound_db": 7.0},
        {"band": "VH", "reference_db": -16.0},
        {"band": "VH", "reference_db": -16.0, "bound_db": 0},
    ],  # fmt: skip
)
def test_a_card_with_a_bad_level_rule_is_refused(tmp_path, rule):
    with pytest.raises(ModelError, match="level rule"):
        _level_model(tmp_path / "bad.onnx", rule)


CHIPS = Path("/work/shared/data/sen1floods11/S1Hand")


def _reference_estimate(v: np.ndarray, reference: float, bound: float) -> levels.Level:
    """estimate_level() as it was written first: np.histogram of the values and of each draw's
    concatenated row bands (the cheaper counting must find the same level, not one within a tolerance)."""
    v = v[np.isfinite(v)].astype(np.float64)
    centres, edges = levels._bins(reference, bound)

    def peak(values):
        return levels._peak(np.histogram(values, edges)[0], centres, reference, bound)

    shift, lone = peak(v)
    if shift is None:
        return levels.Level(0.0, "no_peak")
    if lone and shift > levels.MAX_LONE_RAISE_DB + 1e-9:
        return levels.Level(0.0, "lone_dark", peak_db=reference - shift)
    if lone and shift > levels.DOUBT_LONE_RAISE_DB:
        return levels.Level(shift, "lone_raised", peak_db=reference - shift)
    parts = np.array_split(v, levels.SPREAD_PARTS)
    draws = np.random.default_rng(0).integers(
        0, levels.SPREAD_PARTS, size=(levels.SPREAD_DRAWS, levels.SPREAD_PARTS)
    )
    shifts = [peak(np.concatenate([parts[i] for i in d]))[0] or 0.0 for d in draws]
    spread = float(max(shifts) - min(shifts))
    return levels.Level(
        shift, "unstable" if spread > levels.MAX_SPREAD_DB else None, spread, reference - shift
    )


@pytest.mark.skipif(not CHIPS.is_dir(), reason="Sen1Floods11 chips not present")
@pytest.mark.parametrize("db", [0.0, -3.0, 2.5])
def test_the_level_counted_by_bins_equals_np_histogram_on_every_sen1floods11_chip(db):
    """The level estimate counts bins with one searchsorted and sums the row bands' histograms for the
    spread draws; on every real chip (under a calibration offset too) the answer is the same Level."""
    chips = sorted(CHIPS.glob("*_S1Hand.tif"))
    assert len(chips) >= 9
    for chip in chips:
        with rasterio.open(chip) as src:
            vh = src.read(2).astype(np.float32) + np.float32(db)
        got = levels.estimate_level(vh, REFERENCE, BOUND)
        assert got == _reference_estimate(vh, REFERENCE, BOUND), chip.name
        assert level_shift(vh, REFERENCE, BOUND) == got.shift or got.kind in ("lone_dark", "no_peak"), (
            chip.name
        )


def test_values_on_bin_edges_count_as_np_histogram_counts_them():
    centres, edges = levels._bins(REFERENCE, BOUND)
    values = np.concatenate([edges, edges[[0, -1]] + [-1e-9, 1e-9], centres, [np.float32(edges[5])]])
    counts = levels._counts(levels._bin_index(values, edges), len(centres))
    assert np.array_equal(counts, np.histogram(values, edges)[0])
