"""Class polygons of a finished class raster, with their true area, for scenes of any size.

A whole S1 scene (25000 x 16000 px) mapped pixel by pixel holds millions of one-pixel regions (speckle). The
polygon file therefore drops regions smaller than a minimum mapping unit (GDAL's sieve merges them into their
largest neighbour; the raster and the area statistics keep every pixel), polygonises strip by strip, joining
the polygons a strip edge cuts, so memory does not grow with the scene, and computes areas and writes features
in vectorised batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window

from .card import ClassInfo
from .errors import InputError
from .jobs import MIN_POLYGON
from .outputs import EQUAL_AREA_CRS

DEFAULT_MIN_PIXELS: int = MIN_POLYGON.default
BATCH = 20_000  # features per vectorised area computation and per write
STRIP_ROWS = 1024  # rows sieved and polygonised at once


def polygon_areas_km2(geometries: list[dict], crs: CRS) -> np.ndarray:
    """True areas (km², on EQUAL_AREA_CRS, the pixel areas' rule) of GeoJSON-like polygons in `crs`.

    One coordinate transform and one shoelace sum for the whole batch: building a geometry object per
    polygon would cost more than polygonising.
    """
    from itertools import chain

    from rasterio.warp import transform

    rings = [ring for g in geometries for ring in g["coordinates"]]
    per_polygon = np.fromiter((len(g["coordinates"]) for g in geometries), int, len(geometries))
    lengths = np.fromiter(map(len, rings), int, len(rings))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    xy = np.array(list(chain.from_iterable(rings)), dtype=np.float64)
    xs, ys = transform(crs, EQUAL_AREA_CRS, xy[:, 0], xy[:, 1])
    # relative to each ring's first point, so the products stay small and the sums exact enough
    x = np.asarray(xs) - np.repeat(np.asarray(xs)[starts], lengths)
    y = np.asarray(ys) - np.repeat(np.asarray(ys)[starts], lengths)
    cross = np.zeros_like(x)
    cross[:-1] = x[:-1] * y[1:] - x[1:] * y[:-1]
    cross[starts + lengths - 1] = 0.0  # the pair from a ring's last point into the next ring
    ring_area = np.abs(np.add.reduceat(cross, starts)) / 2.0
    polygon_of_ring = np.repeat(np.arange(len(geometries)), per_polygon)
    first = np.concatenate([[0], np.cumsum(per_polygon)[:-1]])
    sign = -np.ones(len(rings))
    sign[first] = 1.0  # GeoJSON: the exterior ring first, then holes
    return np.bincount(polygon_of_ring, weights=sign * ring_area, minlength=len(geometries)) / 1e6


def _sieved_strip(
    src: rasterio.io.DatasetReader, row0: int, rows: int, nodata: int, min_pixels: int
) -> np.ndarray:
    """Rows row0..row0+rows of the class raster with regions under `min_pixels` merged into a neighbour.

    Sieved with a margin of `min_pixels` rows on both sides: a region that small spans at most that many
    rows, so it is seen whole, and memory stays one strip wide (GDAL's sieve of a whole speckled scene
    holds every region at once).
    """
    from rasterio.features import sieve

    top = max(0, row0 - min_pixels)
    bottom = min(src.height, row0 + rows + min_pixels)
    block = src.read(1, window=Window(0, top, src.width, bottom - top))
    if min_pixels > 1:
        block = sieve(block, min_pixels, mask=block != nodata)
    return block[row0 - top : row0 - top + rows]


def _strip_polygons(strip: np.ndarray, keep: np.ndarray, row0: int) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (shapely, pixel coordinates of the whole raster) and class values of one strip."""
    from affine import Affine
    from rasterio.features import shapes
    from shapely.geometry import shape

    found = list(shapes(strip, mask=keep, transform=Affine.translation(0, row0)))
    geoms = np.array([shape(g) for g, _ in found], dtype=object)
    return geoms, np.array([int(v) for _, v in found], dtype=np.int64)


def _merge_across(
    carried: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray], row0: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Join polygons cut at row `row0`: those carried from above and the new strip's top row ones.

    Returns the strip's polygons (geoms, values) after the join. Coordinates are whole pixels, so shared edges match exactly; parts that touch only at a corner stay
    apart (4-connectivity, as GDAL polygonises).
    """
    import shapely

    geoms, values = new
    at_top = shapely.bounds(geoms)[:, 1] == row0 if len(geoms) else np.zeros(0, bool)
    pool_g = np.concatenate([carried[0], geoms[at_top]])
    pool_v = np.concatenate([carried[1], values[at_top]])
    out_g, out_v = [geoms[~at_top]], [values[~at_top]]
    for value in np.unique(pool_v):
        parts = shapely.get_parts(shapely.union_all(pool_g[pool_v == value], grid_size=1.0))
        out_g.append(parts)
        out_v.append(np.full(len(parts), value, dtype=np.int64))
    return np.concatenate(out_g), np.concatenate(out_v)


def polygon_features(
    class_raster: Path, nodata: int, skip_values: set[int], min_pixels: int
) -> Iterator[tuple[list[dict], list[int], np.ndarray]]:
    """Batches of (GeoJSON-like geometries, class values, areas km²) of the class polygons of a raster.

    Polygonised strip by strip (memory one strip wide); polygons cut by a strip's edge are carried to the
    next strip and joined there, so the result is the whole raster's polygons.
    """
    import shapely
    from shapely.geometry import mapping

    with rasterio.open(class_raster) as src:
        crs, transform = src.crs, src.transform
        carried = (np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64))
        for row0 in range(0, src.height, STRIP_ROWS):
            rows = min(STRIP_ROWS, src.height - row0)
            strip = _sieved_strip(src, row0, rows, nodata, min_pixels)
            keep = (strip != nodata) & ~np.isin(strip, list(skip_values))
            geoms, values = _merge_across(carried, _strip_polygons(strip, keep, row0), row0)
            end = row0 + rows
            open_ = shapely.bounds(geoms)[:, 3] == end if (len(geoms) and end < src.height) else None
            if open_ is None:
                open_ = np.zeros(len(geoms), bool)
            carried = (geoms[open_], values[open_])
            done_g, done_v = geoms[~open_], values[~open_]
            for i in range(0, len(done_g), BATCH):
                part = shapely.transform(done_g[i : i + BATCH], lambda xy: np.column_stack(transform * xy.T))
                features = [mapping(g) for g in part]
                yield features, done_v[i : i + BATCH].tolist(), polygon_areas_km2(features, crs)


def write_polygons(
    class_raster: Path,
    path: str | Path,
    classes: list[ClassInfo],
    nodata: int,
    skip_values: set[int],
    driver_for: str | Path | None = None,
    min_pixels: int = DEFAULT_MIN_PIXELS,
) -> int:
    """Polygonise a class raster into vector file `path` (format from the extension of `driver_for` or
    `path`: .gpkg or .geojson) with class, name, area_km2; returns the number of polygons written.

    Regions smaller than `min_pixels` (4-connected) are merged into their largest neighbour first.
    The caller writes to a temporary name and commits it (see output_set.OutputSet).
    """
    import fiona

    from .output_set import VECTOR_DRIVERS

    path = Path(path)
    named = Path(driver_for) if driver_for is not None else path
    driver = VECTOR_DRIVERS.get(named.suffix.lower())
    if driver is None:
        raise InputError(f"polygon output must end in .gpkg or .geojson: {named.name}")
    if min_pixels < 1:
        raise InputError(f"the smallest polygon must be 1 pixel or more, not {min_pixels}")
    names = {c.value: c.name for c in classes}
    schema = {"geometry": "Polygon", "properties": {"class": "int", "name": "str", "area_km2": "float"}}
    with rasterio.open(class_raster) as src:
        crs_wkt = src.crs.to_wkt()
    count = 0
    with fiona.open(path, "w", driver=driver, crs=crs_wkt, schema=schema, layer=named.stem) as dst:
        for geoms, values, areas in polygon_features(Path(class_raster), nodata, skip_values, min_pixels):
            dst.writerecords(
                {"geometry": g, "properties": {"class": v, "name": names.get(v, ""), "area_km2": float(a)}}
                for g, v, a in zip(geoms, values, areas, strict=True)
            )
            count += len(geoms)
    return count
