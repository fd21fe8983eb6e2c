"""Band tables, units, normalisation, tiling and the model card."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from contrasat.models.bands import S2L1C_BANDS, S2L2A_BANDS, normalise_band_name, resolve_bands
from contrasat.models.card import ClassInfo, ModelCard, read_card
from contrasat.models.errors import ModelError
from contrasat.models.outputs import pixel_areas_km2
from contrasat.models.preprocess import looks_linear, prepare, to_db
from contrasat.models.tiling import blend_weights, tile_starts
from runtime_helpers import S1_SAMPLE, s1_spec


@pytest.mark.parametrize(
    "text,expected",
    [("VV", "VV"), ("Sigma0_VH_db", "VH"), ("B8A", "B8A"), ("b8", "B08"), ("B02", "B02"),
     ("Band 4", ""), ("", ""), (None, ""), ("B10", "B10"), ("B1", "B01")],
)  # fmt: skip
def test_band_names(text, expected):
    assert normalise_band_name(text) == expected


def test_resolve_bands_by_name_then_by_count():
    assert resolve_bands(["VH", "VV"], ("VV", "VH"), ["VV", "VH"]) == [2, 1]
    assert resolve_bands([None, None], ("VV", "VH"), ["VV", "VH"]) == [1, 2]
    assert resolve_bands([None] * 13, S2L1C_BANDS, ["B04", "B08"]) == [4, 8]
    assert resolve_bands([None] * 12, S2L2A_BANDS, ["B11"]) == [11]
    assert resolve_bands([None] * 3, ("VV", "VH"), ["VV", "VH"]) is None
    assert len(S2L2A_BANDS) == 12 and "B10" not in S2L2A_BANDS


def test_db_conversion_and_linear_detection_on_real_chip():
    np.testing.assert_allclose(to_db(np.array([1.0, 0.1, 0.01, 0.0])), [0, -10, -20, -50], atol=1e-5)
    with rasterio.open(S1_SAMPLE) as src:
        db = src.read()
    assert not looks_linear(db)
    assert looks_linear(10 ** (db / 10))


def test_prepare_normalises_with_card_statistics():
    spec = s1_spec()
    raw = np.array([[[-10.0, -60.0]], [[-20.0, np.nan]]], dtype=np.float32)
    x = prepare(raw, spec)
    # VV -60 is clipped to -50 first; NaN becomes 0 (the training mean)
    np.testing.assert_allclose(x, [[[0.0, -10.0]], [[0.0, 0.0]]])


@pytest.mark.parametrize(
    "length,tile,overlap", [(512, 128, 16), (500, 128, 32), (128, 128, 16), (1000, 256, 0)]
)
def test_tiles_cover_raster_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    covered = np.zeros(length, dtype=int)
    for s in starts:
        covered[s : s + tile] += 1
    assert covered.min() >= 1 and starts[-1] + tile == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_blend_weights_fall_towards_edges_but_stay_positive():
    w = blend_weights(64, 64, 16)
    assert w.min() > 0 and w[32, 32] == 1.0
    assert w[0, 32] < w[8, 32] < w[16, 32]


def _ellipsoid_band_km2(lat1: float, lat2: float, dlon_deg: float) -> float:
    """Exact WGS84 area between two parallels over dlon degrees (closed form with the authalic q function)."""
    a, f = 6378137.0, 1 / 298.257223563
    e = np.sqrt(f * (2 - f))
    b = a * (1 - f)

    def q(lat):
        s = np.sin(np.deg2rad(lat))
        return s / (1 - e**2 * s**2) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return b**2 / 2 * np.deg2rad(dlon_deg) * abs(q(lat2) - q(lat1)) / 1e6


def test_pixel_area_is_true_ellipsoid_area_in_any_crs():
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    # UTM on its central meridian: scale factor 0.9996, so a 10 m pixel covers 100 / 0.9996² m²
    utm = pixel_areas_km2(CRS.from_epsg(32630), from_origin(500000, 0, 10, 10), 0, 3, 4)
    np.testing.assert_allclose(utm, 1e-4 / 0.9996**2, rtol=1e-6)
    for lat in (0.0, 45.0, 60.0):
        geo = pixel_areas_km2(CRS.from_epsg(4326), from_origin(0, lat + 1.0, 1.0, 1.0), 0, 1, 1)
        assert geo[0, 0] == pytest.approx(_ellipsoid_band_km2(lat, lat + 1.0, 1.0), rel=1e-6)
    # web mercator inflates by 1/cos²(lat): a true area must not (a 1 km "pixel" at 60° N is 0.25 km²)
    from rasterio.warp import transform as warp

    x, y = warp("EPSG:4326", "EPSG:3857", [10.0], [60.0])
    merc = pixel_areas_km2(CRS.from_epsg(3857), from_origin(x[0], y[0], 1000, 1000), 0, 1, 1)
    assert merc[0, 0] == pytest.approx(0.25, rel=1e-2)


def test_card_round_trip(threshold_model):
    card = read_card(threshold_model)
    assert card.task == "flood" and card.inputs[0].bands == ["VV", "VH"]
    assert ModelCard.from_json(card.to_json()) == card


@pytest.mark.parametrize(
    "change,match",
    [({"task": "weather"}, "task"), ({"classes": []}, "classes"), ({"schema": 99}, "schema"),
     ({"output_nodata": 1}, "nodata"), ({"tile_size": 16}, "tile")],
)  # fmt: skip
def test_card_validation(threshold_model, change, match):
    data = read_card(threshold_model).to_json()
    import json

    bad = json.loads(data) | change
    if "classes" in change and change["classes"]:
        bad["classes"] = [ClassInfo(**c).__dict__ for c in change["classes"]]
    with pytest.raises(ModelError, match=match):
        ModelCard.from_dict(bad)
