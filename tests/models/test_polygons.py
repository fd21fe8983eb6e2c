"""Class polygons: strip-wise polygonising gives the whole raster's polygons; the minimum mapping unit."""

from __future__ import annotations

import fiona
import numpy as np
import pytest
import rasterio
import shapely
from contrasat.cli import main
from contrasat.models import polygons
from contrasat.models.card import ClassInfo
from contrasat.models.pipeline import map_floods
from rasterio.features import shapes, sieve
from rasterio.warp import transform_geom
from runtime_helpers import expected_classes
from shapely.geometry import shape

CLASSES = [ClassInfo(0, "dry", "#000000"), ClassInfo(1, "water", "#0000ff")]


@pytest.fixture(scope="module")
def flood_map(tmp_path_factory, threshold_model, s1_sample):
    """The real S1 sample mapped by VH < -20 dB: a speckled per-pixel map, as a whole scene would be."""
    return map_floods(s1_sample, tmp_path_factory.mktemp("map") / "f.tif", model=threshold_model).output


def _features(path):
    with fiona.open(path) as src:
        return [(shape(f["geometry"]), f["properties"]["area_km2"]) for f in src]


def test_strips_join_into_the_whole_rasters_polygons(flood_map, tmp_path, monkeypatch):
    monkeypatch.setattr(polygons, "STRIP_ROWS", 37)  # many strip edges, none on a block boundary
    count = polygons.write_polygons(flood_map, tmp_path / "p.gpkg", CLASSES, 255, {0}, min_pixels=1)
    with rasterio.open(flood_map) as src:
        data, transform = src.read(1), src.transform
    whole = [shape(g) for g, _ in shapes(data, mask=data == 1, transform=transform)]
    got = _features(tmp_path / "p.gpkg")
    assert count == len(whole) == len(got) > 100
    np.testing.assert_allclose(
        np.sort([g.area for g, _ in got]), np.sort([g.area for g in whole]), rtol=1e-9, atol=1e-15
    )
    difference = shapely.symmetric_difference(
        shapely.union_all([g for g, _ in got]), shapely.union_all(whole)
    ).area
    assert difference < 1e-6 * abs(transform.a * transform.e)  # a millionth of a pixel


def test_small_regions_are_left_out_of_the_polygons_only(flood_map, tmp_path, monkeypatch):
    monkeypatch.setattr(polygons, "STRIP_ROWS", 37)
    polygons.write_polygons(flood_map, tmp_path / "p.gpkg", CLASSES, 255, {0}, min_pixels=9)
    with rasterio.open(flood_map) as src:
        data, pixel = src.read(1), abs(src.transform.a * src.transform.e)
        strips = np.concatenate(
            [
                polygons._sieved_strip(src, r, min(37, src.height - r), 255, 9)
                for r in range(0, src.height, 37)
            ]
        )
    np.testing.assert_array_equal(strips, sieve(data, 9, mask=data != 255))  # strip margins are enough
    got = _features(tmp_path / "p.gpkg")
    sizes = np.array([g.area / pixel for g, _ in got])
    assert sizes.min() >= 9 - 1e-6
    n_all = sum(1 for _ in shapes(data, mask=data == 1))
    assert len(got) < n_all  # speckle was there and is gone


def test_areas_follow_the_equal_area_rule(flood_map, tmp_path):
    polygons.write_polygons(flood_map, tmp_path / "p.gpkg", CLASSES, 255, {0}, min_pixels=1)
    with rasterio.open(flood_map) as src:
        crs = src.crs
    with fiona.open(tmp_path / "p.gpkg") as src:
        feats = list(src)[:300]
    for f in feats:
        geom = transform_geom(crs, polygons.EQUAL_AREA_CRS, dict(f["geometry"]))
        assert f["properties"]["area_km2"] == pytest.approx(shape(geom).area / 1e6, rel=1e-9)


def test_cli_default_and_refusal(tmp_path, threshold_model, s1_sample, capsys):
    common = ["map-floods", "--s1", str(s1_sample), "--model", str(threshold_model), "--progress", "none"]
    assert main([*common, "--out", str(tmp_path / "a.tif"), "--polygons", str(tmp_path / "a.gpkg")]) == 0
    assert main([*common, "--out", str(tmp_path / "b.tif"), "--polygons", str(tmp_path / "b.gpkg"),
                 "--min-polygon", "1"]) == 0  # fmt: skip
    with fiona.open(tmp_path / "a.gpkg") as a, fiona.open(tmp_path / "b.gpkg") as b:
        assert 0 < len(a) < len(b)  # the default drops speckle
    capsys.readouterr()
    code = main([*common, "--out", str(tmp_path / "c.tif"), "--polygons", str(tmp_path / "c.gpkg"),
                 "--min-polygon", "0"])  # fmt: skip
    assert code == 2 and "--min-polygon" in capsys.readouterr().err
    assert not list(tmp_path.glob("c.*"))


def test_an_aoi_of_fewer_pixels_than_the_smallest_polygon_still_gets_its_polygons(
    tmp_path, threshold_model, s1_sample
):
    """A 2 x 2 pixel AOI (4 px, under the default smallest polygon of 9 px) over water: GDAL's sieve refuses
    a threshold above the image's size, which failed the whole job; the AOI's region has no neighbour to be
    merged into, so it is kept, as an isolated region of a larger map is."""
    water = expected_classes(s1_sample) == 1
    rows, cols = np.nonzero(water[:-1, :-1] & water[1:, :-1] & water[:-1, 1:] & water[1:, 1:])
    r, c = int(rows[0]), int(cols[0])
    with rasterio.open(s1_sample) as src:
        t, crs = src.transform, src.crs.to_string()
    ring = [list(t * xy) for xy in ((c, r), (c + 2, r), (c + 2, r + 2), (c, r + 2), (c, r))]
    res = map_floods(s1_sample, tmp_path / "f.tif", model=threshold_model, polygons=tmp_path / "p.gpkg",
                     aoi=({"type": "Polygon", "coordinates": [ring]}, crs))  # fmt: skip
    assert res.shape == (2, 2)
    got = _features(tmp_path / "p.gpkg")
    assert len(got) == 1
    assert got[0][1] == pytest.approx(res.class_area_km2["water"], rel=1e-3)
    assert got[0][0].area == pytest.approx(4 * abs(t.a * t.e), rel=1e-6)
