"""Label features on the output grid: which pixels each polygon or point labels, after the edge rule.

Edge rule: a polygon labels the pixels whose centres lie inside it shrunk by `EDGE_PX` pixels, because
hand-drawn boundaries are where labels are least sure and mixed pixels sit there. A point labels the one
pixel it falls in. Pixels two classes claim are nobody's. Every refusal is one InputError line, raised before
any model runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely import STRtree
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from .aoi import polygonal
from .errors import InputError
from .notes import warning
from .own_labels import POINT_TYPES, LabelLayer
from .rasters import Grid

EDGE_PX = 1  # pixels shaved off polygon edges


@dataclass
class PlacedFeature:
    """The labelled pixels of one feature: a window of the grid and a mask inside it."""

    number: int
    cls: int
    window: Window
    mask: np.ndarray  # (h, w) bool

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid rows and columns of the labelled pixels."""
        r, c = np.nonzero(self.mask)
        return r + int(self.window.row_off), c + int(self.window.col_off)


def _on_grid(layer: LabelLayer, grid: Grid) -> list[BaseGeometry]:
    """Every feature's geometry in the grid's CRS (repaired when invalid); a CRS that cannot be transformed is
    refused. A file without CRS: its coordinates are taken as the raster's (place_labels notes it)."""
    out = []
    for feature in layer.features:
        geom = feature.geometry if layer.crs is None else _transformed(feature.geometry, layer, grid)
        if geom.geom_type not in POINT_TYPES and not geom.is_valid:
            geom = polygonal(geom, f"label feature {feature.number}", None)
        out.append(geom)
    return out


def _transformed(geometry: BaseGeometry, layer: LabelLayer, grid: Grid) -> BaseGeometry:
    try:
        geom = shape(transform_geom(layer.crs, grid.crs, mapping(geometry)))
    except Exception as exc:
        raise InputError(
            f"the CRS of {layer.path.name} ({_crs_name(layer.crs)}) cannot be transformed to the "
            f"raster's ({_crs_name(grid.crs)})"
        ) from exc
    if not geom.is_empty and not all(math.isfinite(v) for v in geom.bounds):
        raise InputError(
            f"the CRS of {layer.path.name} cannot be transformed to the raster's: coordinates fall off it"
        )
    return geom


def _crs_name(crs) -> str:
    """EPSG:nnnn, else the CRS's own name (the first quoted text of its WKT)."""
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    match = re.search(r'"([^"]*)"', crs.to_wkt())
    return match.group(1) if match else "unnamed"


def _window(geom: BaseGeometry, grid: Grid) -> Window | None:
    """Whole-pixel window around a geometry, clipped to the grid; None when it lies off the grid."""
    inv = ~grid.transform
    left, bottom, right, top = geom.bounds
    cols, rows = zip(*(inv * (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    col0, row0 = max(math.floor(min(cols)), 0), max(math.floor(min(rows)), 0)
    col1, row1 = min(math.floor(max(cols)) + 1, grid.width), min(math.floor(max(rows)) + 1, grid.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _shrunk(geom: BaseGeometry, grid: Grid) -> BaseGeometry:
    if geom.geom_type in POINT_TYPES:
        return geom
    pixel = min(abs(grid.transform.a), abs(grid.transform.e))
    return geom.buffer(-EDGE_PX * pixel)


def _mask(geom: BaseGeometry, window: Window, grid: Grid) -> np.ndarray:
    from rasterio.windows import transform as window_transform

    hw = (int(window.height), int(window.width))
    if geom.is_empty:
        return np.zeros(hw, dtype=bool)
    burnt = rasterize([(mapping(geom), 1)], out_shape=hw, transform=window_transform(window, grid.transform),
                      fill=0, dtype="uint8")  # fmt: skip
    return burnt > 0


def place_labels(layer: LabelLayer, grid: Grid, notes: list) -> list[PlacedFeature]:
    """The labelled pixels of every feature on `grid`; refuses labels off the raster and empty classes."""
    geoms = _on_grid(layer, grid)
    if layer.crs is None:
        notes.append(warning(f"{layer.path.name} names no CRS: its coordinates are taken as the raster's"))
    footprint = box(*_grid_bounds(grid))
    shrunk = [_shrunk(g, grid) for g in geoms]
    tree = STRtree(shrunk)
    placed, outside = [], 0
    for k, (feature, geom) in enumerate(zip(layer.features, geoms, strict=True)):
        window = _window(geom, grid) if geom.intersects(footprint) else None
        if window is None:
            outside += 1
            continue
        mask = _mask(shrunk[k], window, grid)
        rivals = [shrunk[j] for j in tree.query(shrunk[k]) if layer.features[j].cls != feature.cls]
        if rivals and mask.any():  # pixels two classes claim are no one's
            mask &= ~_mask(_union(rivals), window, grid)
        placed.append(PlacedFeature(feature.number, feature.cls, window, mask))
    if not placed:
        raise InputError(f"the labels in {layer.path.name} lie outside the raster")
    if outside:
        notes.append(warning(f"{outside} of {len(geoms)} label features lie outside the raster: ignored"))
    check_classes(layer, placed, "after leaving out pixels on polygon edges")
    return placed


def _union(geoms: list[BaseGeometry]) -> BaseGeometry:
    from shapely.ops import unary_union

    return unary_union(geoms)


def _grid_bounds(grid: Grid) -> tuple[float, float, float, float]:
    t = grid.transform
    xs = (t.c, t.c + t.a * grid.width)
    ys = (t.f, t.f + t.e * grid.height)
    return min(xs), min(ys), max(xs), max(ys)


def check_classes(layer: LabelLayer, placed: list[PlacedFeature], why: str) -> None:
    """Refuse when a class of the layer is left without any labelled pixel."""
    counts = np.zeros(len(layer.classes), dtype=np.int64)
    for p in placed:
        counts[p.cls] += int(p.mask.sum())
    empty = [layer.classes[i].name for i in np.flatnonzero(counts == 0)]
    if empty:
        raise InputError(
            f"class {', '.join(repr(n) for n in empty)} of {layer.path.name} has no labelled pixel {why} "
            "(polygons too small or thin, or off the raster): draw larger polygons"
        )
