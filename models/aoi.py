"""Areas of interest: read a polygon file in any CRS and turn it into a window and a mask on a raster grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom
from rasterio.windows import Window, from_bounds
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from .errors import InputError

# An AOI is a vector file path, or (GeoJSON-like geometry, CRS) as drawn on a map canvas.
AOI = str | Path | tuple[dict[str, Any], Any] | None


def read_aoi(path: str | Path) -> tuple[dict[str, Any], CRS]:
    """Union of all polygons in a vector file (GeoJSON, GeoPackage, ...) and the file's CRS."""
    import fiona

    path = Path(path)
    if not path.is_file():
        raise InputError(f"AOI file not found: {path}")
    try:
        with fiona.open(path) as src:
            crs = CRS.from_user_input(src.crs) if src.crs else CRS.from_epsg(4326)
            geoms = [shape(f["geometry"]) for f in src if f["geometry"] is not None]
    except (fiona.errors.FionaError, ValueError) as exc:
        raise InputError(f"AOI file is not a readable vector file: {path.name}") from exc
    polygons = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polygons:
        raise InputError(f"AOI file has no polygon: {path.name}")
    return mapping(unary_union(polygons)), crs


def aoi_on_grid(geometry: dict[str, Any], aoi_crs: CRS, grid_crs: CRS) -> dict[str, Any]:
    """The AOI geometry reprojected to the raster grid's CRS (made valid, since reprojection can twist rings)."""
    geom = shape(transform_geom(aoi_crs, grid_crs, geometry))
    if not geom.is_valid:
        geom = geom.buffer(0)
    if geom.is_empty or geom.area == 0:
        raise InputError("AOI is empty once reprojected onto the raster")
    return mapping(geom)


def aoi_window(geometry: dict[str, Any], transform, width: int, height: int) -> Window:
    """Smallest whole-pixel window that covers the AOI, clipped to the raster; error when they do not meet."""
    left, bottom, right, top = shape(geometry).bounds
    win = from_bounds(left, bottom, right, top, transform=transform)
    col0 = max(int(np.floor(win.col_off)), 0)
    row0 = max(int(np.floor(win.row_off)), 0)
    col1 = min(int(np.ceil(win.col_off + win.width)), width)
    row1 = min(int(np.ceil(win.row_off + win.height)), height)
    if col1 <= col0 or row1 <= row0:
        raise InputError("AOI does not overlap the input raster")
    window = Window(col0, row0, col1 - col0, row1 - row0)
    return window


def aoi_mask(geometry: dict[str, Any], transform, shape_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool, True inside the AOI (pixel centres), for a block with the given transform."""
    return geometry_mask([geometry], out_shape=shape_hw, transform=transform, invert=True, all_touched=False)


def load_aoi(aoi: AOI, grid_crs: CRS, notes: list | None = None) -> dict[str, Any] | None:
    """The AOI given to a job (file or drawn geometry), as one geometry in the raster grid's CRS."""
    if aoi is None:
        return None
    if isinstance(aoi, tuple):
        geometry, crs = aoi
        if not geometry:
            raise InputError("AOI is empty")
        return aoi_on_grid(geometry, CRS.from_user_input(crs), grid_crs)
    geometry, crs = read_aoi(aoi)
    return aoi_on_grid(geometry, crs, grid_crs)
