"""AOI clipping checked by values: every output pixel is the model's answer where its centre lies inside the
polygon (holes excluded) and nodata elsewhere; the inside test is done independently (pyproj + shapely on
pixel centres), for an AOI in another CRS than the raster."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from contrasat.models.series import classify_series
from rasterio.warp import transform as warp_points
from runtime_helpers import THRESHOLD_DB, expected_classes
from shapely.geometry import Polygon, mapping

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
SERIES_MODEL = REPO / "models" / "weights" / "pixel_ts_landcover.onnx"


def _polygon_in(
    crs: str, src, corners_px: list[tuple[float, float]], hole_px: list[tuple[float, float]]
) -> Polygon:
    """A polygon with a hole, given in raster pixel (col, row) positions, expressed in `crs`."""

    def to_crs(points):
        xs, ys = zip(*(src.transform * p for p in points), strict=True)
        return list(zip(*warp_points(src.crs, crs, xs, ys), strict=True))

    return Polygon(to_crs(corners_px), [to_crs(hole_px)])


def _centres_inside(path: Path, polygon: Polygon, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """For an output raster: (centre inside polygon, centre within one pixel of its boundary)."""
    with rasterio.open(path) as out:
        rows, cols = np.mgrid[0 : out.height, 0 : out.width]
        xs, ys = rasterio.transform.xy(out.transform, rows.ravel(), cols.ravel(), offset="center")
        pixel = abs(out.transform.a)
        px, py = warp_points(out.crs, crs, xs, ys)
        # one pixel in the AOI's units, measured at the polygon
        gx, gy = warp_points(out.crs, crs, [xs[0], xs[0] + pixel], [ys[0], ys[0]])
        step = float(np.hypot(gx[1] - gx[0], gy[1] - gy[0]))
    px, py = np.asarray(px), np.asarray(py)
    inside = shapely.contains_xy(polygon, px, py).reshape(rows.shape)
    near = (shapely.distance(polygon.boundary, shapely.points(px, py)) < step).reshape(rows.shape)
    return inside, near


def _offset(out_path: Path, src) -> tuple[int, int]:
    with rasterio.open(out_path) as out:
        col = (out.transform.c - src.transform.c) / src.transform.a
        row = (out.transform.f - src.transform.f) / src.transform.e
    assert abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6  # on the input grid
    return int(round(row)), int(round(col))


def test_flood_map_inside_the_aoi_is_the_model_outside_is_nodata(tmp_path, threshold_model, s1_sample):
    crs = "EPSG:32630"  # the raster is EPSG:4326
    with rasterio.open(s1_sample) as src:
        polygon = _polygon_in(
            crs, src, [(30, 20), (420, 60), (380, 470), (60, 400)], [(150, 150), (260, 170), (200, 280)]
        )
        result = map_floods(s1_sample, tmp_path / "f.tif", model=threshold_model, aoi=(mapping(polygon), crs),
                            config=Execution(tile=128, overlap=16))  # fmt: skip
        row0, col0 = _offset(result.output, src)
        vh = src.read(2)
    with rasterio.open(result.output) as out:
        classes = out.read(1)
    h, w = classes.shape
    assert 0 <= row0 <= 21 and 0 <= col0 <= 31 and 380 < h and 380 < w  # the window hugs the polygon
    inside, near = _centres_inside(result.output, polygon, crs)
    far = ~near
    assert inside[far].mean() > 0.5 and (~inside[far]).sum() > 1000  # both sides are well represented
    expected = np.where(inside, expected_classes(s1_sample)[row0 : row0 + h, col0 : col0 + w], 255)
    decided = far & (np.abs(vh[row0 : row0 + h, col0 : col0 + w] - THRESHOLD_DB) > 1e-3)
    np.testing.assert_array_equal(classes[decided], expected[decided])
    assert (classes[far & ~inside] == 255).all()  # outside and in the hole: nodata, never a class
    assert near.mean() < 0.05


@pytest.fixture(scope="module")
def series_full(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("series") / "full.tif"
    return classify_series(STACK, out, model=SERIES_MODEL).output


def test_series_inside_the_aoi_equals_the_unclipped_run(tmp_path, series_full):
    crs = "EPSG:4326"  # the stack is EPSG:32633
    with rasterio.open(STACK) as src:
        polygon = _polygon_in(
            crs, src, [(10, 5), (90, 15), (80, 95), (15, 80)], [(40, 40), (60, 45), (50, 60)]
        )
    aoi = tmp_path / "aoi.geojson"
    feature = {"type": "Feature", "geometry": mapping(polygon), "properties": {}}
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    result = classify_series(STACK, tmp_path / "clip.tif", model=SERIES_MODEL, aoi=aoi)
    with rasterio.open(STACK) as src:
        row0, col0 = _offset(result.output, src)
    with rasterio.open(result.output) as out, rasterio.open(series_full) as full:
        clipped = out.read(1)
        h, w = clipped.shape
        whole = full.read(1)[row0 : row0 + h, col0 : col0 + w]
    inside, near = _centres_inside(result.output, polygon, crs)
    far = ~near
    assert inside[far].sum() > 2000 and (~inside[far]).sum() > 200
    np.testing.assert_array_equal(clipped[far & inside], whole[far & inside])
    assert (clipped[far & ~inside] == 255).all()


@pytest.mark.parametrize("box", [(470, 100, 512, 300), (450, 450, 512, 512), (0, 449, 60, 512)])
def test_an_aoi_on_pixel_edges_maps_exactly_its_pixels(tmp_path, threshold_model, s1_sample, box):
    """An AOI drawn on the raster's pixel edges (e.g. a grid cell or another raster's extent): its corners
    come back from the affine transform a hair off the edges (1e-12 px), which must not add a column or row
    of nodata outside the AOI to the output."""
    c0, r0, c1, r1 = box
    with rasterio.open(s1_sample) as src:
        t, crs = src.transform, src.crs.to_string()
        ring = [list(t * xy) for xy in ((c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0))]
        res = map_floods(s1_sample, tmp_path / "f.tif", model=threshold_model,
                         aoi=({"type": "Polygon", "coordinates": [ring]}, crs))  # fmt: skip
        assert res.shape == (r1 - r0, c1 - c0)
        assert _offset(res.output, src) == (r0, c0)
    with rasterio.open(res.output) as out:
        np.testing.assert_array_equal(out.read(1), expected_classes(s1_sample)[r0:r1, c0:c1])


def test_pixel_centres_on_the_aoi_edge_are_inside_or_not_whatever_the_model_reads(
    tmp_path, threshold_model, s1_sample
):
    """A triangle with corners on pixel corners runs exactly through some pixel centres. Whether such a pixel
    is in the AOI must not depend on the model: one that reads surroundings hands the rows over at other
    offsets, and the AOI's pixels (and so its areas) were decided block by block where those rows fell."""
    from contrasat.models.card import read_card, write_card

    with_margin = tmp_path / "with_margin.onnx"
    with_margin.write_bytes(threshold_model.read_bytes())
    card = read_card(threshold_model)
    card.context_margin = 16
    write_card(with_margin, card)
    with rasterio.open(s1_sample) as src:
        t, crs = src.transform, src.crs.to_string()
    ring = [list(t * xy) for xy in ((50, 400), (300, 100), (450, 480), (50, 400))]
    aoi = ({"type": "Polygon", "coordinates": [ring]}, crs)
    maps, areas = [], []
    for model in (threshold_model, with_margin):
        res = map_floods(s1_sample, tmp_path / f"{model.stem}.tif", model=model, aoi=aoi)
        with rasterio.open(res.output) as out:
            maps.append(out.read(1))
        areas.append(res.class_area_km2)
    assert maps[0].shape == maps[1].shape
    assert np.array_equal(maps[0] == 255, maps[1] == 255)
    assert areas[0] == pytest.approx(areas[1], rel=1e-12)
