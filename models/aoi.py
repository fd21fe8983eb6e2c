"""Areas of interest: read a polygon file in any CRS and turn it into a window and a mask on a raster grid.

shapely is imported inside the functions that use it: a job without an AOI never needs it (~15 ms a run).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

from .errors import InputError
from .notes import warning

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

# An AOI is a vector file path, or (GeoJSON-like geometry, CRS) as drawn on a map canvas.
AOI = str | Path | tuple[dict[str, Any], Any] | None
EDGE_DIGITS = 6  # pixel positions this close to a pixel edge are on it


def polygonal(geom: BaseGeometry, what: str, notes: list | None) -> BaseGeometry:
    """The polygonal part of a geometry, repaired with make_valid when invalid (self-intersections keep
    every lobe, unlike buffer(0)); a note says so. Refused when nothing with an area is left."""
    from shapely import make_valid
    from shapely.geometry import Polygon
    from shapely.ops import unary_union
    from shapely.validation import explain_validity

    if not geom.is_valid:
        reason = explain_validity(geom)
        geom = make_valid(geom)
        if notes is not None:
            notes.append(warning(f"{what} was not a valid polygon ({reason}); repaired with make_valid"))
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        geom = unary_union(parts) if parts else Polygon()
    if geom.is_empty or geom.area == 0 or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(f"{what} has no area (empty, degenerate or not a polygon)")
    return geom


def read_aoi(path: str | Path, notes: list | None = None) -> tuple[dict[str, Any], CRS]:
    """Union of all polygons in a vector file (GeoJSON, GeoPackage, ...) and the file's CRS."""
    import fiona
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

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
        kinds = sorted({g.geom_type for g in geoms}) or ["no geometry"]
        raise InputError(f"AOI file has no polygon ({', '.join(kinds)}: no area to map): {path.name}")
    if len(polygons) < len(geoms) and notes is not None:
        notes.append(
            warning(f"AOI {path.name}: {len(geoms) - len(polygons)} feature(s) without area ignored")
        )
    repaired = [polygonal(g, f"AOI {path.name}", notes) for g in polygons]
    return mapping(unary_union(repaired)), crs


def aoi_on_grid(
    geometry: dict[str, Any], aoi_crs: CRS, grid_crs: CRS, notes: list | None = None
) -> dict[str, Any]:
    """The AOI geometry reprojected to the raster grid's CRS (made valid, since reprojection can twist rings)."""
    from shapely.geometry import mapping, shape

    geom = shape(transform_geom(aoi_crs, grid_crs, geometry))
    if geom.is_empty or (geom.is_valid and geom.area == 0):
        raise InputError("AOI is empty once reprojected onto the raster")
    return mapping(polygonal(geom, "AOI", notes))


def aoi_window(geometry: dict[str, Any], transform, width: int, height: int) -> Window:
    """Smallest whole-pixel window that covers the AOI, clipped to the raster; error when they do not meet."""
    from shapely.geometry import shape

    left, bottom, right, top = shape(geometry).bounds
    win = from_bounds(left, bottom, right, top, transform=transform)
    # an AOI on pixel edges comes back from the transform a hair (1e-12 px) off them: rounded first, so
    # such an edge adds no row or column outside the AOI
    col0 = max(int(np.floor(round(win.col_off, EDGE_DIGITS))), 0)
    row0 = max(int(np.floor(round(win.row_off, EDGE_DIGITS))), 0)
    col1 = min(int(np.ceil(round(win.col_off + win.width, EDGE_DIGITS))), width)
    row1 = min(int(np.ceil(round(win.row_off + win.height, EDGE_DIGITS))), height)
    if col1 <= col0 or row1 <= row0:
        raise InputError("AOI does not overlap the input raster")
    window = Window(col0, row0, col1 - col0, row1 - row0)
    return window


def aoi_mask(geometry: dict[str, Any], transform, shape_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool, True inside the AOI (pixel centres), for a block with the given transform."""
    return geometry_mask([geometry], out_shape=shape_hw, transform=transform, invert=True, all_touched=False)


# rows of the output the AOI is rasterised at once, always from the same row: GDAL decides a pixel centre
# lying exactly on the AOI's edge with float arithmetic relative to the block's origin
MASK_ROWS = 64


class AOIMask:
    """The AOI's pixel-centre mask (aoi_mask) of an output grid, handed out by rows in any blocks: rasterised
    in fixed blocks of MASK_ROWS rows from the output's top, so a pixel is in the AOI or not however the
    rows arrive (a model reading surroundings hands them over at other offsets than one that does not)."""

    def __init__(self, geometry: dict[str, Any], transform, width: int, height: int) -> None:
        self.geometry, self.transform, self.width, self.height = geometry, transform, width, height
        self._block, self._mask = -1, np.zeros((0, width), dtype=bool)

    def rows(self, row0: int, n: int) -> np.ndarray:
        """(n, width) bool, True inside the AOI, for output rows row0 .. row0 + n."""
        out = np.empty((n, self.width), dtype=bool)
        row = row0
        while row < row0 + n:
            block, top = row // MASK_ROWS, row // MASK_ROWS * MASK_ROWS
            if block != self._block:
                h = min(MASK_ROWS, self.height - top)
                block_transform = window_transform(Window(0, top, self.width, h), self.transform)
                self._block, self._mask = block, aoi_mask(self.geometry, block_transform, (h, self.width))
            end = min(top + MASK_ROWS, row0 + n)
            out[row - row0 : end - row0] = self._mask[row - top : end - top]
            row = end
        return out


def load_aoi(aoi: AOI, grid_crs: CRS, notes: list | None = None) -> dict[str, Any] | None:
    """The AOI given to a job (file or drawn geometry), as one geometry in the raster grid's CRS."""
    if aoi is None:
        return None
    if isinstance(aoi, tuple):
        geometry, crs = aoi
        if not geometry:
            raise InputError("AOI is empty")
        return aoi_on_grid(geometry, CRS.from_user_input(crs), grid_crs, notes)
    geometry, crs = read_aoi(aoi, notes)
    return aoi_on_grid(geometry, crs, grid_crs, notes)
