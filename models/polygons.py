"""Class polygons of a finished class raster, with their true area, for scenes of any size.

A whole S1 scene (25000 x 16000 px) mapped pixel by pixel holds millions of one-pixel regions (speckle). The
polygon file therefore drops regions smaller than a minimum mapping unit (GDAL's sieve merges them into their
largest neighbour; the raster and the area statistics keep every pixel), polygonises strip by strip, joining
the polygons a strip edge cuts, so memory does not grow with the scene, and computes areas and writes features
in vectorised batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
STRIP_ROWS = 512  # rows sieved and polygonised at once (a speckled strip: ~0.5 M Python vertices)


@dataclass
class _Flat:
    """GeoJSON-like polygons as flat arrays: all points, points per ring, rings per polygon."""

    xy: np.ndarray
    lengths: np.ndarray
    rings: np.ndarray

    @classmethod
    def of(cls, geometries: list[dict]) -> _Flat:
        from itertools import chain

        rings = [ring for g in geometries for ring in g["coordinates"]]
        xy = np.array(list(chain.from_iterable(rings)), dtype=np.float64).reshape(-1, 2)
        return cls(
            xy,
            np.fromiter(map(len, rings), int, len(rings)),
            np.fromiter((len(g["coordinates"]) for g in geometries), int, len(geometries)),
        )

    @classmethod
    def of_shapely(cls, geometries: np.ndarray) -> _Flat:
        import shapely

        rings = shapely.get_rings(geometries)  # exterior first, then holes, polygon by polygon
        return cls(
            shapely.get_coordinates(rings),
            shapely.get_num_coordinates(rings).astype(int),
            shapely.get_num_interior_rings(geometries).astype(int) + 1,
        )

    def shapely(self) -> np.ndarray:
        """The polygons as shapely geometries, built in one vectorised call (not one object per ring)."""
        import shapely

        if not len(self.rings):
            return np.zeros(0, dtype=object)
        offsets = (
            np.concatenate([[0], np.cumsum(self.lengths)]),
            np.concatenate([[0], np.cumsum(self.rings)]),
        )
        return shapely.from_ragged_array(shapely.GeometryType.POLYGON, self.xy, offsets)

    def __add__(self, other: _Flat) -> _Flat:
        return _Flat(
            np.concatenate([self.xy, other.xy]),
            np.concatenate([self.lengths, other.lengths]),
            np.concatenate([self.rings, other.rings]),
        )

    def take(self, start: int, stop: int) -> _Flat:
        """Polygons start..stop (a batch)."""
        ring_ends = np.concatenate([[0], np.cumsum(self.rings)]).astype(int)
        point_ends = np.concatenate([[0], np.cumsum(self.lengths)]).astype(int)
        r0, r1 = ring_ends[start], ring_ends[min(stop, len(self.rings))]
        return _Flat(self.xy[point_ends[r0] : point_ends[r1]], self.lengths[r0:r1], self.rings[start:stop])

    @property
    def ring_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(int)

    def row_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest y of each polygon's exterior ring."""
        first = np.concatenate([[0], np.cumsum(self.rings)[:-1]]).astype(int)
        starts = self.ring_starts[first]
        return np.minimum.reduceat(self.xy[:, 1], starts), np.maximum.reduceat(self.xy[:, 1], starts)

    def geojson(self, xy: np.ndarray) -> list[dict]:
        """The polygons again as GeoJSON-like dicts, with the points `xy` (e.g. transformed)."""
        points = xy.tolist()
        ends = np.cumsum(self.lengths).tolist()
        rings = [points[e - n : e] for e, n in zip(ends, self.lengths.tolist(), strict=True)]
        out, i = [], 0
        for n in self.rings.tolist():
            out.append({"type": "Polygon", "coordinates": rings[i : i + n]})
            i += n
        return out

    def areas_km2(self, xy: np.ndarray, crs: CRS) -> np.ndarray:
        """True areas (km², on EQUAL_AREA_CRS, the pixel areas' rule) with the points `xy` in `crs`."""
        from rasterio.warp import transform

        starts, lengths = self.ring_starts, self.lengths
        xs, ys = transform(crs, EQUAL_AREA_CRS, xy[:, 0], xy[:, 1])
        # relative to each ring's first point, so the products stay small and the sums exact enough
        x = np.asarray(xs) - np.repeat(np.asarray(xs)[starts], lengths)
        y = np.asarray(ys) - np.repeat(np.asarray(ys)[starts], lengths)
        cross = np.zeros_like(x)
        cross[:-1] = x[:-1] * y[1:] - x[1:] * y[:-1]
        cross[starts + lengths - 1] = 0.0  # the pair from a ring's last point into the next ring
        ring_area = np.abs(np.add.reduceat(cross, starts)) / 2.0
        first = np.concatenate([[0], np.cumsum(self.rings)[:-1]]).astype(int)
        sign = -np.ones(len(lengths))
        sign[first] = 1.0  # GeoJSON: the exterior ring first, then holes
        polygon_of_ring = np.repeat(np.arange(len(self.rings)), self.rings)
        return np.bincount(polygon_of_ring, weights=sign * ring_area, minlength=len(self.rings)) / 1e6


def polygon_areas_km2(geometries: list[dict], crs: CRS) -> np.ndarray:
    """True areas (km², on EQUAL_AREA_CRS, the pixel areas' rule) of GeoJSON-like polygons in `crs`.

    One coordinate transform and one shoelace sum for the whole batch: building a geometry object per
    polygon would cost more than polygonising.
    """
    flat = _Flat.of(geometries)
    return flat.areas_km2(flat.xy, crs)


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
        # GDAL refuses a threshold above the image's size (a few-pixel AOI); every region but one filling
        # the whole block is then smaller than the block, so the block's size sieves the same
        block = sieve(block, min(min_pixels, block.size), mask=block != nodata)
    return block[row0 - top : row0 - top + rows]


def _join(
    carried: tuple[np.ndarray, np.ndarray], top: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Join polygons carried from the strip above with the new strip's polygons they share an edge with.

    Coordinates are whole pixels, so shared edges match exactly; parts that touch only at a corner come
    out apart again (4-connectivity, as GDAL polygonises).
    """
    import shapely

    geoms = np.concatenate([carried[0], top[0]])
    values = np.concatenate([carried[1], top[1]])
    parent = np.arange(len(geoms))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    n = len(carried[0])
    if n and len(top[0]):
        above, below = shapely.STRtree(top[0]).query(carried[0], predicate="intersects")
        for i, j in zip(above.tolist(), (below + n).tolist(), strict=True):
            if values[i] == values[j]:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(geoms)):
        groups.setdefault(root(i), []).append(i)
    out_g, out_v = [], []
    for members in groups.values():
        if len(members) == 1:
            out_g.append(geoms[members])
        else:
            out_g.append(shapely.get_parts(shapely.union_all(geoms[members])))
        out_v.append(np.full(len(out_g[-1]), values[members[0]], dtype=np.int64))
    if not out_g:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_g), np.concatenate(out_v)


def polygon_features(
    class_raster: Path, nodata: int, skip_values: set[int], min_pixels: int
) -> Iterator[tuple[_Flat, np.ndarray, list[int], np.ndarray]]:
    """Batches of (polygons as flat arrays, their points in the raster's CRS, class values, areas km²) of
    the class polygons of a raster.

    Polygonised strip by strip (memory one strip wide). Polygons that reach a strip's edge are carried to
    the next strip as geometries and joined there; all others go straight from GDAL's output to the file
    as flat arrays, which is what keeps millions of polygons cheap.
    """
    import shapely
    from affine import Affine
    from rasterio.features import shapes

    with rasterio.open(class_raster) as src:
        crs, transform, height = src.crs, src.transform, src.height
        carried = (np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64))
        for row0 in range(0, height, STRIP_ROWS):
            end = min(row0 + STRIP_ROWS, height)
            strip = _sieved_strip(src, row0, end - row0, nodata, min_pixels)
            keep = (strip != nodata) & ~np.isin(strip, list(skip_values))
            found = list(shapes(strip, mask=keep, transform=Affine.translation(0, row0)))
            dicts = [g for g, _ in found]
            values = np.array([int(v) for _, v in found], dtype=np.int64)
            low, high = _Flat.of(dicts).row_range() if dicts else (np.zeros(0), np.zeros(0))
            at_top, at_bottom = (low == row0) & (row0 > 0), (high == end) & (end < height)
            pick = np.flatnonzero(at_top | at_bottom)
            edge = _Flat.of([dicts[i] for i in pick]).shapely()
            geoms, vals = _join(carried, (edge[at_top[pick]], values[pick][at_top[pick]]))
            geoms = np.concatenate([geoms, edge[~at_top[pick]]])
            vals = np.concatenate([vals, values[pick][~at_top[pick]]])
            still = (
                shapely.bounds(geoms)[:, 3] == end
                if (len(geoms) and end < height)
                else np.zeros(len(geoms), bool)
            )
            carried = (geoms[still], vals[still])
            inner = np.flatnonzero(~(at_top | at_bottom))
            done = _Flat.of([dicts[i] for i in inner]) + _Flat.of_shapely(geoms[~still])
            done_v = np.concatenate([values[inner], vals[~still]]).tolist()
            del found, dicts  # the strip as Python objects: the largest thing held while writing
            for i in range(0, len(done_v), BATCH):
                flat = done.take(i, i + BATCH)
                x, y = transform * (flat.xy[:, 0], flat.xy[:, 1])
                xy = np.column_stack([x, y])
                yield flat, xy, done_v[i : i + BATCH], flat.areas_km2(xy, crs)


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
        for flat, xy, values, areas in polygon_features(Path(class_raster), nodata, skip_values, min_pixels):
            dst.writerecords(
                {"geometry": g, "properties": {"class": v, "name": names.get(v, ""), "area_km2": float(a)}}
                for g, v, a in zip(flat.geojson(xy), values, areas, strict=True)
            )
            count += len(values)
    return count
