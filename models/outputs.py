"""Outputs: atomic GeoTIFF writing, pixel areas in km², and class polygons with their area."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS

from .card import ClassInfo, ModelCard

EQUAL_AREA_CRS = "EPSG:6933"  # WGS 84 / NSIDC EASE-Grid 2.0 Global: equal-area on the ellipsoid


def class_profile(crs: CRS, transform, width: int, height: int, nodata: int) -> dict:
    """GeoTIFF profile of a uint8 class raster: tiled, deflate-compressed, 255 = nodata.

    Deflate level 4 without a predictor: class values are labels, not a signal, so horizontal differencing
    (predictor 2) makes the file larger, not smaller; level 4 compresses 3-4x faster than the default 6
    for files 2-10 % larger (bench/overhead.py: 2048² maps, smooth and speckled). The class raster is
    compressed while the network runs, and on a whole scene that is seconds of one core."""
    return {
        "driver": "GTiff", "dtype": "uint8", "count": 1, "crs": crs, "transform": transform,
        "width": width, "height": height, "nodata": nodata, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "zlevel": 4,
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
    if pixel_area_km2.shape[1] == 1:  # area by row only: count per row, no (rows, width) float temporaries
        return np.array([float((classes == v).sum(axis=1) @ pixel_area_km2[:, 0]) for v in values])
    return np.array([float(pixel_area_km2[classes == v].sum()) for v in values])


AREA_CHUNK = 2048  # columns per pixel-area computation: memory stays bounded on very wide rasters


def block_class_areas_km2(
    classes: np.ndarray, values: list[int], crs: CRS, transform, row0: int
) -> np.ndarray:
    """True area in km² of each class value in rows row0.. of a raster (`classes` is (rows, width))."""
    from rasterio.transform import Affine

    rows, width = classes.shape
    if crs.is_geographic and transform.b == 0 and transform.d == 0:  # area by row only: one pass
        return class_areas_km2(classes, values, pixel_areas_km2(crs, transform, row0, rows, width))
    total = np.zeros(len(values))
    for c0 in range(0, width, AREA_CHUNK):
        part = classes[:, c0 : c0 + AREA_CHUNK]
        areas = pixel_areas_km2(crs, transform * Affine.translation(c0, 0), row0, rows, part.shape[1])
        total += class_areas_km2(part, values, areas)
    return total


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
