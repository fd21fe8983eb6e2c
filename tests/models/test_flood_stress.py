"""Stress tests of the bundled DEFAULT flood model on real labelled pixels (tests/fixtures/flood_stress).

(a) whole-water / whole-dry tiles; (b) VV raised on water only; (c) +-3 dB on both bands; (d) the map must
not depend on tile size or on where tiles fall. A tile counts as mapped water when >= 50 % of its pixels
have p(water) > 0.5. Numpy and the runtime only (no torch): the figures are recomputed here independently
of training/flood/stress.py, which writes the results page rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.execution import Execution
from contrasat.models.levels import prepare_scene
from contrasat.models.pipeline import map_floods
from contrasat.models.registry import default_model_path
from contrasat.models.session import load_model
from rasterio.windows import Window
from runtime_helpers import REPO, S1_SAMPLE

FIXTURE = REPO / "tests" / "fixtures" / "flood_stress" / "stress.npz"
# Dual-polarisation sources whose labelled water is open water (see the fixture README for ETCI Nebraska).
WATER_SOURCES = ("sen1floods11", "ETCI_northal")
DRY_SOURCES = ("sen1floods11", "ETCI_northal", "ETCI_nebraska")


@pytest.fixture(scope="module")
def fx() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as f:
        return {k: f[k].astype(np.float32) if f[k].dtype == np.float16 else f[k] for k in f.files}


@pytest.fixture(scope="module")
def p_water():
    model = load_model(default_model_path("flood"), provider="cpu", threads=1)
    spec = model.card.inputs[0]
    water = next(c.value for c in model.card.classes if c.name == "water")

    def run(s1: np.ndarray) -> np.ndarray:
        return np.concatenate([model.run({spec.name: np.stack([prepare_scene(t, spec) for t in s1[i : i + 8]])})[:, water]
                               for i in range(0, len(s1), 8)])  # fmt: skip

    return run


def tiles_called_water(p_water, tiles: np.ndarray) -> np.ndarray:
    return (p_water(tiles) > 0.5).reshape(len(tiles), -1).mean(axis=1) >= 0.5


def iou(p_water, s1: np.ndarray, label: np.ndarray) -> float:
    pred, ok = p_water(s1) > 0.5, label >= 0
    truth = label == 1
    return float((pred & truth & ok).sum() / ((pred | truth) & ok).sum())


def test_whole_water_tiles_are_mapped_as_water(fx, p_water):
    tiles = np.concatenate([fx[f"a_water_{s}"] for s in WATER_SOURCES])
    assert len(tiles) >= 10
    assert tiles_called_water(p_water, tiles).mean() >= 0.95


def test_whole_dry_tiles_are_not_mapped_as_water(fx, p_water):
    tiles = np.concatenate([fx[f"a_dry_{s}"] for s in DRY_SOURCES])
    assert tiles_called_water(p_water, tiles).mean() <= 0.02


@pytest.mark.parametrize("db", [4.0, 6.0, 8.0, 10.0])
def test_bright_vv_on_water_costs_at_most_003_iou(fx, p_water, db):
    s1, label = fx["bc_s1"], fx["bc_label"]
    raised = s1.copy()
    raised[:, 0][label == 1] += db
    assert iou(p_water, s1, label) - iou(p_water, raised, label) <= 0.03


@pytest.mark.parametrize("db", [-3.0, 3.0])
def test_gain_offset_on_both_bands_costs_at_most_003_iou(fx, p_water, db):
    s1, label = fx["bc_s1"], fx["bc_label"]
    assert iou(p_water, s1, label) - iou(p_water, s1 + np.float32(db), label) <= 0.03


def _map(
    src: rasterio.DatasetReader, window: Window, folder, tile: int, overlap: int, aoi=None
) -> np.ndarray:
    path = folder / f"in_{window.row_off}_{window.col_off}_{tile}.tif"
    profile = {**src.profile, "width": window.width, "height": window.height,
               "transform": src.window_transform(window)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(src.read(window=window))
    out = folder / f"map_{window.row_off}_{window.col_off}_{tile}_{aoi is not None}.tif"
    map_floods(path, out, aoi=aoi, config=Execution(tile=tile, overlap=overlap, provider="cpu"))
    with rasterio.open(out) as f:
        if aoi is None:
            return f.read(1)
        # the AOI's window, placed back on the raster's grid
        col, row = (round(v) for v in ~src.transform * (f.transform.c, f.transform.f))
        placed = np.full((src.height, src.width), 255, dtype=np.uint8)
        placed[row : row + f.height, col : col + f.width] = f.read(1)
        return placed


def _aoi_from(src: rasterio.DatasetReader, col: int, row: int, folder) -> Path:
    """A GeoJSON rectangle on pixel edges from (col, row) to the raster's far corner, in its CRS."""
    (x0, y0), (x1, y1) = src.transform * (col, row), src.transform * (src.width, src.height)
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    path = folder / f"aoi_{col}_{row}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection",
                                "crs": {"type": "name", "properties": {"name": src.crs.to_string()}},
                                "features": [{"type": "Feature", "properties": {},
                                              "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))  # fmt: skip
    return path


def test_map_does_not_depend_on_tile_size_or_tile_offsets(tmp_path):
    """Tiles of 128..1024 px, and tile grids starting at random offsets (an AOI whose corner is a random
    pixel: the scene stays the raster, only where the tiles fall moves)."""
    rng = np.random.default_rng(8)
    with rasterio.open(S1_SAMPLE) as src:
        full = Window(0, 0, src.width, src.height)
        ref = _map(src, full, tmp_path, 256, 32)
        agreements = []
        for tile in (128, 384, 512, 1024):
            agreements.append(np.mean(_map(src, full, tmp_path, tile, 32) == ref))
        for tile in (128, 256):
            dx, dy = (int(v) for v in rng.integers(1, tile, size=2))
            part = _map(src, full, tmp_path, tile, 32, aoi=_aoi_from(src, dx, dy, tmp_path))
            inside = part[dy:, dx:]
            assert np.mean(inside != 255) > 0.9  # the AOI covers its corner of the chip
            agreements.append(np.mean(inside == ref[dy:, dx:]))
    assert min(agreements) >= 0.995, agreements


def test_a_raster_cut_elsewhere_is_another_scene_but_close(tmp_path):
    """A raster cut at an offset is a different scene: a model with a level rule may find its dry-land
    peak one 0.25 dB bin away (docs/results/flood.md). The map must still stay close."""
    with rasterio.open(S1_SAMPLE) as src:
        ref = _map(src, Window(0, 0, src.width, src.height), tmp_path, 256, 32)
        for dx, dy in ((163, 217), (69, 131)):
            part = _map(src, Window(dx, dy, src.width - dx, src.height - dy), tmp_path, 256, 32)
            assert np.mean(part == ref[dy:, dx:]) >= 0.95
