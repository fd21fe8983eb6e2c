"""The tiled pipeline on the real sample: exact answers from a per-pixel threshold model."""

from __future__ import annotations

import fiona
import numpy as np
import pytest
import rasterio
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from rasterio.warp import transform_geom
from runtime_helpers import THRESHOLD_DB, expected_classes


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile, src.transform


@pytest.mark.parametrize("tile,overlap,batch", [(128, 16, 4), (64, 8, 3), (256, 0, 1), (512, 32, 2)])
def test_tiling_reproduces_per_pixel_answer(tmp_path, threshold_model, s1_sample, tile, overlap, batch):
    out = tmp_path / "flood.tif"
    result = map_floods(s1_sample, out, model=threshold_model,
                        config=Execution(tile=tile, overlap=overlap, batch=batch, provider="cpu"))  # fmt: skip
    classes, profile, _ = _read(out)
    np.testing.assert_array_equal(classes, expected_classes(s1_sample))
    assert profile["dtype"] == "uint8" and profile["nodata"] == 255 and profile["tiled"]
    assert result.provider == "CPUExecutionProvider"
    assert result.shape == (512, 512)


def test_raster_smaller_than_tile_is_padded(tmp_path, threshold_model, s1_sample):
    small = tmp_path / "small.tif"
    with rasterio.open(s1_sample) as src:
        win = rasterio.windows.Window(100, 50, 70, 45)
        profile = src.profile | {"width": 70, "height": 45, "transform": src.window_transform(win)}
        with rasterio.open(small, "w", **profile) as dst:
            dst.write(src.read(window=win))
            dst.descriptions = src.descriptions
    out = tmp_path / "flood.tif"
    map_floods(small, out, model=threshold_model)
    classes, _, _ = _read(out)
    np.testing.assert_array_equal(classes, expected_classes(small))


def test_flooded_area_matches_pixel_geometry(tmp_path, threshold_model, s1_sample):
    result = map_floods(s1_sample, tmp_path / "f.tif", model=threshold_model)
    water = expected_classes(s1_sample) == 1
    with rasterio.open(s1_sample) as src:
        lat = src.transform.f + src.transform.e * (np.arange(src.height) + 0.5)
        # small-pixel approximation, independent of the runtime's formula
        px_km2 = (6371.0072 * np.deg2rad(src.res[0])) ** 2 * np.cos(np.deg2rad(lat))
    approx = float((water * px_km2[:, None]).sum())
    assert result.flooded_km2 == pytest.approx(approx, rel=1e-3)
    assert result.class_area_km2["water"] == pytest.approx(result.flooded_km2)


def test_probabilities_and_polygons(tmp_path, threshold_model, s1_sample):
    result = map_floods(s1_sample, tmp_path / "f.tif", model=threshold_model,
                        probabilities=tmp_path / "p.tif", polygons=tmp_path / "w.gpkg", min_polygon=1)  # fmt: skip
    with rasterio.open(result.probabilities) as src:
        probs = src.read()
        assert src.count == 2 and src.dtypes[0] == "float32"
    classes, _, _ = _read(result.output)
    valid = classes != 255
    np.testing.assert_allclose(probs[:, valid].sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(probs[:, valid], axis=0), classes[valid])
    assert np.isnan(probs[:, ~valid]).all()
    with fiona.open(result.polygons) as src:
        feats = list(src)
    assert feats and {f["properties"]["class"] for f in feats} == {1}
    total = sum(f["properties"]["area_km2"] for f in feats)
    assert total == pytest.approx(result.flooded_km2, rel=0.01)


def test_linear_backscatter_is_detected_and_converted(tmp_path, threshold_model, s1_sample):
    linear = tmp_path / "linear.tif"
    with rasterio.open(s1_sample) as src:
        data = 10 ** (src.read() / 10)
        with rasterio.open(linear, "w", **src.profile) as dst:
            dst.write(data.astype(np.float32))
    result = map_floods(linear, tmp_path / "f.tif", model=threshold_model)
    classes, _, _ = _read(result.output)
    expected = expected_classes(s1_sample)
    with rasterio.open(s1_sample) as src:
        # the stored dB values are quantised, so some sit exactly on the threshold; float round-off decides those
        decided = np.abs(src.read(2) - THRESHOLD_DB) > 1e-3
    np.testing.assert_array_equal(classes[decided], expected[decided])
    assert any("linear" in n for n in result.notes)


def _write_aoi(path, geom_4326, crs):
    geom = transform_geom("EPSG:4326", crs, geom_4326)
    schema = {"geometry": "Polygon", "properties": {}}
    with fiona.open(path, "w", driver="GeoJSON" if path.suffix == ".geojson" else "GPKG", crs=crs,
                    schema=schema) as dst:  # fmt: skip
        dst.write({"geometry": geom, "properties": {}})


@pytest.mark.parametrize("crs,suffix", [("EPSG:4326", ".geojson"), ("EPSG:32630", ".gpkg")])
def test_aoi_clips_grid_and_masks_outside(tmp_path, threshold_model, s1_sample, crs, suffix):
    with rasterio.open(s1_sample) as src:
        t, bounds = src.transform, src.bounds
    # a triangle over the upper-left part of the chip
    x0, y0 = bounds.left + 40 * t.a, bounds.top + 30 * t.e
    x1, y1 = bounds.left + 300 * t.a, bounds.top + 260 * t.e
    tri = {"type": "Polygon", "coordinates": [[(x0, y0), (x1, y0), (x0, y1), (x0, y0)]]}
    aoi = tmp_path / f"aoi{suffix}"
    _write_aoi(aoi, tri, crs)
    result = map_floods(s1_sample, tmp_path / "f.tif", model=threshold_model, aoi=aoi)
    classes, profile, transform = _read(result.output)
    assert 255 <= profile["width"] <= 265 and 225 <= profile["height"] <= 235
    col_off = round((transform.c - t.c) / t.a)
    row_off = round((transform.f - t.f) / t.e)
    assert abs(col_off - 40) <= 1 and abs(row_off - 30) <= 1
    inside = classes != 255
    # roughly half of the bounding box is inside the triangle
    assert 0.4 < inside.mean() < 0.6
    exp = expected_classes(s1_sample)[
        row_off : row_off + classes.shape[0], col_off : col_off + classes.shape[1]
    ]
    np.testing.assert_array_equal(classes[inside], exp[inside])
    assert classes[-1, -1] == 255  # outside the triangle


def test_fusion_model_aligns_reprojected_s2(tmp_path, fusion_model, s1_sample):
    """An S2 raster in another CRS is warped onto the S1 grid on the fly; the output keeps the S1 grid."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    from runtime_helpers import S2_SAMPLE

    s2_utm = tmp_path / "s2_utm.tif"
    with rasterio.open(S2_SAMPLE) as src:
        transform, w, h = calculate_default_transform(
            src.crs, "EPSG:32630", src.width, src.height, *src.bounds
        )
        profile = src.profile | {"crs": "EPSG:32630", "transform": transform, "width": w, "height": h}
        with rasterio.open(s2_utm, "w", **profile) as dst:
            for b in range(1, src.count + 1):
                reproject(rasterio.band(src, b), rasterio.band(dst, b), resampling=Resampling.nearest)
            dst.descriptions = src.descriptions
    result = map_floods(s1_sample, tmp_path / "f.tif", s2=s2_utm, model=fusion_model)
    classes, profile, transform = _read(result.output)
    with rasterio.open(s1_sample) as src:
        assert profile["crs"] == src.crs and transform.almost_equals(src.transform)
    expected = expected_classes(s1_sample)
    agree = classes[classes != 255] == expected[classes != 255]
    assert agree.all()
    # S2 pixels outside its warped footprint become nodata in the output
    assert (classes == 255).sum() >= (expected == 255).sum()


def test_threshold_really_is_the_boundary(s1_sample):
    """Guard for the fixture itself: the sample holds water and dry pixels, many of them within 1 dB of the
    threshold on either side, so a model that misplaced the cut would change thousands of pixels."""
    exp = expected_classes(s1_sample)
    assert 0.05 < (exp == 1).mean() < 0.95
    with rasterio.open(s1_sample) as src:
        vh = src.read(2)
    just_below = (vh >= THRESHOLD_DB - 1) & (vh < THRESHOLD_DB)
    just_above = (vh >= THRESHOLD_DB) & (vh < THRESHOLD_DB + 1)
    assert just_below.sum() > 1000 and just_above.sum() > 1000
    assert (exp[just_below] == 1).all() and (exp[just_above] == 0).all()


def test_pre_event_separates_new_flood_from_permanent_water(tmp_path, threshold_model, s1_sample):
    """Pre-event image: left half was dry (VH raised 15 dB), right half identical -> new vs permanent water."""
    pre = tmp_path / "pre.tif"
    with rasterio.open(s1_sample) as src:
        data = src.read()
        data[1, :, :256] += 15.0
        with rasterio.open(pre, "w", **src.profile) as dst:
            dst.write(data)
            dst.descriptions = src.descriptions
    result = map_floods(s1_sample, tmp_path / "f.tif", pre_event=pre, model=threshold_model,
                        polygons=tmp_path / "p.gpkg", statistics=tmp_path / "s.csv")  # fmt: skip
    classes, _, _ = _read(result.output)
    post = expected_classes(s1_sample)
    water = post == 1
    pre_water = water.copy()
    pre_water[:, :256] &= data[1, :, :256] < THRESHOLD_DB
    assert (classes[water & ~pre_water] == 1).all()
    assert (classes[water & pre_water] == 2).all()
    assert (classes[post == 0] == 0).all() and (classes[post == 255] == 255).all()
    assert [c.name for c in result.classes] == ["dry", "flood water", "permanent water"]
    assert result.flooded_km2 == pytest.approx(result.class_area_km2["flood water"])
    assert result.class_area_km2["permanent water"] > 0
    with fiona.open(result.polygons) as src:
        assert {f["properties"]["name"] for f in src} == {"flood water", "permanent water"}
    import csv

    with open(result.statistics, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["dry", "flood water", "permanent water"]
    assert float(rows[1]["area_km2"]) == pytest.approx(result.flooded_km2, rel=1e-5)
    assert sum(float(r["share"]) for r in rows) == pytest.approx(1.0, abs=1e-4)
