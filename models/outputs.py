"""Outputs: atomic GeoTIFF writing, pixel areas in km², and class polygons with their area."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS

from .card import ClassInfo, ModelCard
from .errors import InputError

EARTH_RADIUS_M = 6371007.2  # authalic radius: sphere with the WGS84 ellipsoid's surface area
EQUAL_AREA_CRS = "EPSG:6933"  # WGS 84 / NSIDC EASE-Grid 2.0 Global, for polygon areas


def check_writable(path: str | Path, label: str = "output") -> Path:
    """Fail early, before any work, when an output cannot be created where asked."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{label} folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{label} folder is not writable: {parent}")
    if path.is_dir():
        raise InputError(f"{label} path is a folder, not a file: {path}")
    return path


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".partial{final.suffix}", dir=final.parent)
    os.close(fd)
    os.unlink(tmp)  # the driver creates the file itself; some refuse to overwrite
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        for leftover in tmp_path.parent.glob(tmp_path.name + "*"):
            with suppress(OSError):
                leftover.unlink()
        raise


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


def row_pixel_area_km2(crs: CRS, transform, row0: int, rows: int) -> np.ndarray:
    """Area in km² of one pixel in each of `rows` rows starting at `row0` (varies with latitude if geographic)."""
    if crs.is_geographic:
        lat_top = transform.f + transform.e * (row0 + np.arange(rows))
        lat_bottom = lat_top + transform.e
        d_lon = np.deg2rad(abs(transform.a))
        band = np.abs(np.sin(np.deg2rad(lat_top)) - np.sin(np.deg2rad(lat_bottom)))
        return EARTH_RADIUS_M**2 * d_lon * band / 1e6
    unit = crs.linear_units_factor[1] if crs.is_projected else 1.0
    area = abs(transform.a * transform.e - transform.b * transform.d) * unit**2 / 1e6
    return np.full(rows, area)


def class_areas_km2(classes: np.ndarray, values: list[int], row_area_km2: np.ndarray) -> np.ndarray:
    """Area in km² of each class value in a block of rows, given each row's pixel area."""
    per_row = np.stack([(classes == v).sum(axis=1) for v in values])
    return per_row @ row_area_km2


def write_polygons(
    class_raster: Path, path: str | Path, classes: list[ClassInfo], nodata: int, skip_values: set[int]
) -> int:
    """Polygonise a class raster into a vector file (format from the extension) with class, name, area_km2.

    Returns the number of polygons written; the file appears only when complete.
    """
    import fiona
    from rasterio.features import shapes
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    path = Path(path)
    # Single-file formats only: a shapefile's sidecar files could not be renamed into place atomically.
    driver = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}.get(path.suffix.lower())
    if driver is None:
        raise InputError(f"polygon output must end in .gpkg or .geojson: {path.name}")
    names = {c.value: c.name for c in classes}
    schema = {"geometry": "Polygon", "properties": {"class": "int", "name": "str", "area_km2": "float"}}
    count = 0
    with rasterio.open(class_raster) as src:
        data = src.read(1)
        keep = (data != nodata) & ~np.isin(data, list(skip_values))
        crs = src.crs
        with atomic_path(path) as tmp:
            with fiona.open(tmp, "w", driver=driver, crs=crs.to_wkt(), schema=schema, layer=path.stem) as dst:
                for geom, value in shapes(data, mask=keep, transform=src.transform):
                    area = shape(transform_geom(crs, EQUAL_AREA_CRS, geom)).area / 1e6
                    props = {"class": int(value), "name": names.get(int(value), ""), "area_km2": area}
                    dst.write({"geometry": geom, "properties": props})
                    count += 1
    return count


def write_statistics(path: str | Path, classes: list[ClassInfo], areas_km2: list[float], model: str) -> Path:
    """Area per class as CSV (value, name, area_km2, share of the mapped area), written atomically."""
    import csv

    total = sum(areas_km2) or 1.0
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["value", "name", "area_km2", "share", "model"])
        for c, area in zip(classes, areas_km2, strict=True):
            writer.writerow([c.value, c.name, f"{area:.6f}", f"{area / total:.6f}", model])
    return Path(path)
