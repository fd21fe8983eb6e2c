"""Outputs: atomic GeoTIFF writing, pixel areas in km², and class polygons with their area."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS

from .card import ClassInfo, ModelCard
from .errors import InputError

EQUAL_AREA_CRS = "EPSG:6933"  # WGS 84 / NSIDC EASE-Grid 2.0 Global: equal-area on the ellipsoid


def class_profile(crs: CRS, transform, width: int, height: int, nodata: int) -> dict:
    """GeoTIFF profile of a uint8 class raster: tiled, deflate-compressed, 255 = nodata."""
    return {
        "driver": "GTiff", "dtype": "uint8", "count": 1, "crs": crs, "transform": transform,
        "width": width, "height": height, "nodata": nodata, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 2,
    }  # fmt: skip


def probability_profile(crs: CRS, transform, width: int, height: int, bands: int) -> dict:
    """GeoTIFF profile of float32 class probabilities, NaN = nodata."""
    return {
        "driver": "GTiff", "dtype": "float32", "count": bands, "crs": crs, "transform": transform,
        "width": width, "height": height, "nodata": float("nan"), "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3,
    }  # fmt: skip


def hex_to_rgba(color: str) -> tuple[int, int, int, int]:
    """'#rrggbb' or '#rrggbbaa' -> (r, g, b, a)."""
    text = color.lstrip("#")
    if len(text) == 6:
        text += "ff"
    return tuple(int(text[i : i + 2], 16) for i in (0, 2, 4, 6))  # type: ignore[return-value]


def describe_classes(dst: rasterio.io.DatasetWriter, card: ModelCard, classes: list[ClassInfo]) -> None:
    """Colour table and metadata so any GIS shows the class raster with its colours and names."""
    dst.write_colormap(1, {c.value: hex_to_rgba(c.color) for c in classes})
    dst.set_band_description(1, f"{card.task} class")
    dst.update_tags(model=card.name, classes=";".join(f"{c.value}={c.name}" for c in classes))


def pixel_areas_km2(crs: CRS, transform, row0: int, rows: int, width: int, samples: int = 17) -> np.ndarray:
    """True area on the WGS84 ellipsoid (km²) of the pixels of `rows` rows from `row0`: (rows, width).

    Each sampled pixel's corners are projected to EPSG:6933, an equal-area projection of the ellipsoid, and
    its area taken there, so any CRS (EPSG:3857 included) gets true areas. In a geographic CRS a pixel's
    area depends on its row only, so one column is computed and broadcast ((rows, 1) is returned); in a
    projected CRS `samples` columns are computed per row and interpolated between (the scale varies slowly).
    """
    from rasterio.warp import transform as warp_points

    if crs.is_geographic and transform.b == 0 and transform.d == 0:
        cols = np.array([0.0])
    else:
        cols = np.unique(np.round(np.linspace(0, max(width - 1, 0), min(samples, max(width, 1)))))
    cc, rr = np.meshgrid(cols, row0 + np.arange(rows, dtype=np.float64))
    corners = [(cc, rr), (cc + 1, rr), (cc + 1, rr + 1), (cc, rr + 1)]
    xs, ys = [], []
    for c, r in corners:
        x, y = transform * (c.ravel(), r.ravel())
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    ex, ey = warp_points(crs, EQUAL_AREA_CRS, np.concatenate(xs).tolist(), np.concatenate(ys).tolist())
    ex = np.asarray(ex, dtype=np.float64).reshape(4, *cc.shape)
    ey = np.asarray(ey, dtype=np.float64).reshape(4, *cc.shape)
    shoelace = sum(ex[i] * ey[(i + 1) % 4] - ex[(i + 1) % 4] * ey[i] for i in range(4))
    area = np.abs(shoelace) / 2.0 / 1e6
    if len(cols) == 1:
        return area if crs.is_geographic else np.repeat(area, width, axis=1)
    every = np.arange(width, dtype=np.float64)
    return np.stack([np.interp(every, cols, row) for row in area])


def class_areas_km2(classes: np.ndarray, values: list[int], pixel_area_km2: np.ndarray) -> np.ndarray:
    """Area in km² of each class value in a block, given each pixel's area ((rows, width) or (rows, 1))."""
    return np.array([float(((classes == v) * pixel_area_km2).sum()) for v in values])


def polygon_features(
    classes: np.ndarray, transform, crs: CRS, names: dict[int, str], nodata: int, skip_values: set[int]
):
    """Class polygons of a class array with class, name and true area (km², same rule as pixel areas)."""
    from rasterio.features import shapes
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    keep = (classes != nodata) & ~np.isin(classes, list(skip_values))
    for geom, value in shapes(classes, mask=keep, transform=transform):
        area = shape(transform_geom(crs, EQUAL_AREA_CRS, geom)).area / 1e6
        yield {
            "geometry": geom,
            "properties": {"class": int(value), "name": names.get(int(value), ""), "area_km2": area},
        }


def write_polygons(
    class_raster: Path,
    path: str | Path,
    classes: list[ClassInfo],
    nodata: int,
    skip_values: set[int],
    driver_for: str | Path | None = None,
) -> int:
    """Polygonise a class raster into vector file `path` (format from the extension of `driver_for` or
    `path`: .gpkg or .geojson) with class, name, area_km2; returns the number of polygons written.

    The caller writes to a temporary name and commits it (see output_set.OutputSet).
    """
    import fiona

    from .output_set import VECTOR_DRIVERS

    path = Path(path)
    named = Path(driver_for) if driver_for is not None else path
    driver = VECTOR_DRIVERS.get(named.suffix.lower())
    if driver is None:
        raise InputError(f"polygon output must end in .gpkg or .geojson: {named.name}")
    names = {c.value: c.name for c in classes}
    schema = {"geometry": "Polygon", "properties": {"class": "int", "name": "str", "area_km2": "float"}}
    count = 0
    with rasterio.open(class_raster) as src:
        data = src.read(1)
        crs = src.crs
        with fiona.open(path, "w", driver=driver, crs=crs.to_wkt(), schema=schema, layer=named.stem) as dst:
            for feature in polygon_features(data, src.transform, crs, names, nodata, skip_values):
                dst.write(feature)
                count += 1
    return count


def write_statistics(path: str | Path, classes: list[ClassInfo], areas_km2: list[float], model: str) -> int:
    """Area per class as CSV (value, name, area_km2, share of the mapped area); returns the rows written.

    The caller writes to a temporary name and commits it (see output_set.OutputSet).
    """
    import csv

    total = sum(areas_km2) or 1.0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["value", "name", "area_km2", "share", "model"])
        for c, area in zip(classes, areas_km2, strict=True):
            writer.writerow([c.value, c.name, f"{area:.6f}", f"{area / total:.6f}", model])
    return len(classes)
