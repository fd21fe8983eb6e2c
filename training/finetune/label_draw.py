"""Polygons drawn automatically from a real label mask, the way an analyst draws them.

An analyst draws a few polygons well inside areas they are sure of: here each polygon is the part of one
class's area (eroded by `inset` pixels, so it stays off the class boundary) inside a square of random size
around a random pixel, taken as the connected piece that contains that pixel. Polygons do not overlap.
Used by the fine-tuning study and tests to imitate user labels from the Sen1Floods11 hand labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.warp import transform_geom
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.ops import unary_union

CLASS_NAMES = {0: "dry", 1: "water"}


def draw_polygons(
    label: np.ndarray, transform, n: int, rng: np.random.Generator, allowed: np.ndarray | None = None,
    size: tuple[int, int] = (6, 20), inset: int = 2,
) -> list[tuple[dict, int]]:  # fmt: skip
    """`n` polygons (GeoJSON geometry in the label's CRS, class) alternating water and dry, water first."""
    free = np.ones(label.shape, bool) if allowed is None else allowed.copy()
    out: list[tuple[dict, int]] = []
    for k in range(n):
        cls = 1 if k % 2 == 0 else 0
        area = ndimage.binary_erosion(label == cls, np.ones((3, 3), bool), iterations=inset) & free
        pixels = np.argwhere(area)
        if not len(pixels):
            continue
        row, col = pixels[rng.integers(len(pixels))]
        half = int(rng.integers(size[0], size[1] + 1))
        square = np.zeros_like(area)
        square[max(row - half, 0) : row + half + 1, max(col - half, 0) : col + half + 1] = True
        pieces, _ = ndimage.label(area & square)
        piece = pieces == pieces[row, col]
        geoms = [
            shape(g) for g, v in shapes(piece.astype(np.uint8), mask=piece, transform=transform) if v == 1
        ]
        out.append((mapping(unary_union(geoms)), cls))
        grown = ndimage.binary_dilation(piece, np.ones((3, 3), bool), iterations=3)
        free &= ~grown
    return out


def write_labels(polygons: list[tuple[dict, int]], src_crs, path: Path, dst_crs: str = "EPSG:4326",
                 field: str = "class", names: bool = True) -> Path:  # fmt: skip
    """Write polygons as a vector file (GeoJSON or GeoPackage) in `dst_crs`; class as names or 0/1."""
    import fiona

    schema = {"geometry": "Polygon", "properties": {field: "str" if names else "int"}}
    driver = "GPKG" if path.suffix == ".gpkg" else "GeoJSON"
    src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    with fiona.open(path, "w", driver=driver, crs_wkt=dst.to_wkt(), schema=schema) as sink:
        for geom, cls in polygons:
            g = shape(transform_geom(src, dst, geom))
            parts = list(g.geoms) if g.geom_type == "MultiPolygon" else [g]
            for part in parts:
                sink.write(
                    {"geometry": mapping(part), "properties": {field: CLASS_NAMES[cls] if names else cls}}
                )
    return path
