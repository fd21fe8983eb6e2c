"""An analyst's labels on their own rasters: polygons or points with a class field, or a label raster.

Each label feature (or, for a label raster, each connected patch of one class) becomes a *region*: the
pixels it covers on one S1 raster, read with the runtime's own rules (units, nodata, card normalisation).
Regions are the unit of validation: whole regions are held back, never single pixels, so the score on
held-back regions is not inflated by neighbouring pixels that trained the model.

Edge rule: a pixel is labelled when its centre lies inside the polygon and so do the centres of all pixels
within `edge` pixels of it (the polygon's mask eroded by `edge` pixels, 3×3 neighbourhood), because
hand-drawn boundaries are where labels are least sure. A polygon too thin to keep any pixel after erosion
keeps its un-eroded pixels. Points label the one pixel they fall in. Pixels claimed by regions of different
classes, and pixels with no valid S1 value, are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely import STRtree
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from ...models.card import ModelCard
from ...models.errors import InputError
from ...models.preprocess import prepare
from ...models.rasters import Grid, InputRaster, detect_level, detect_units, open_input
from ...models.tiled_job import with_surroundings
from ..common.metrics import IGNORE

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
LABEL_NODATA = (-1, 255)  # Sen1Floods11 and Contrasat outputs: not a class
MIN_PIXELS = 20  # per class, over all regions, after the edge rule
MARGIN = 32  # context pixels read around a region (the network sees this much around the labels)


@dataclass
class Region:
    """The labelled pixels of one feature on one raster, with the normalised S1 around them."""

    name: str  # e.g. "feature 3" or "patch 2 of class water"
    cls: int  # card class value
    raster: str  # raster file name
    x: np.ndarray  # (C, h, w) float32 network input (card normalisation; invalid pixels 0)
    label: np.ndarray  # (h, w) int64: cls on this region's pixels, IGNORE elsewhere
    window: Window = field(default_factory=lambda: Window(0, 0, 0, 0))

    @property
    def n_pixels(self) -> int:
        return int(np.sum(self.label != IGNORE))


@dataclass
class LabelSet:
    """Every region read from one label file over the given rasters, plus what was dropped and why."""

    regions: list[Region]
    label_file: str
    field: str | None
    notes: list[str] = field(default_factory=list)
    # classes with a feature whose every pixel lies under the other class (dropped as claimed by both)
    overlapped: set[int] = field(default_factory=set)

    def count(self, cls: int) -> tuple[int, int]:
        """(regions, pixels) of one class."""
        mine = [r for r in self.regions if r.cls == cls]
        return len(mine), sum(r.n_pixels for r in mine)


def class_lookup(card: ModelCard) -> dict[str, int]:
    """Accepted label values -> class value: the card's class names (any case) and values (0, "1", 1.0)."""
    lookup = {c.name.lower(): c.value for c in card.classes}
    lookup.update({str(c.value): c.value for c in card.classes})
    return lookup


def parse_class(value, lookup: dict[str, int]) -> int | None:
    """A field value as a class value, or None when it names no class of the card."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip().lower()
    if text in lookup:
        return lookup[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return lookup.get(str(int(number))) if number.is_integer() else None


def _accepted(card: ModelCard) -> str:
    return ", ".join(f"{c.name}/{c.value}" for c in card.classes)


def read_features(path: Path, field_name: str, card: ModelCard) -> tuple[list[tuple[BaseGeometry, int]], str]:
    """(geometry, class) of every feature of a vector file, in the file's CRS (returned as WKT)."""
    import fiona

    lookup = class_lookup(card)
    try:
        with fiona.open(path) as src:
            if len(src) == 0:  # a layer saved before drawing (a GeoJSON then has no fields either)
                raise InputError(f"label file {path.name} holds no features: draw water and dry polygons")
            crs = src.crs_wkt or "EPSG:4326"
            fields = list(src.schema["properties"])
            if field_name not in fields:
                raise InputError(
                    f"label file {path.name} has no field '{field_name}' (fields: {', '.join(fields) or 'none'}); "
                    "name the class field with --field"
                )
            features, unknown, empty = [], set(), 0
            for f in src:
                if f["geometry"] is None:
                    continue
                value = f["properties"][field_name]
                if value is None or str(value).strip() == "":  # digitised without a class (QGIS: NULL)
                    empty += 1
                    continue
                cls = parse_class(value, lookup)
                if cls is None:
                    unknown.add(str(value))
                    continue
                features.append((shape(f["geometry"]), cls))
    except (fiona.errors.FionaError, ValueError) as exc:
        raise InputError(f"label file is not a readable vector file: {path.name}") from exc
    if unknown:
        raise InputError(
            f"label field '{field_name}' has values the model's classes do not know: "
            f"{', '.join(sorted(unknown)[:5])} (use {_accepted(card)})"
        )
    if empty:
        raise InputError(
            f"{empty} feature(s) of {path.name} have an empty class (field '{field_name}'): give each one a "
            f"class ({_accepted(card)}) or delete it"
        )
    return features, crs


def _erode(mask: np.ndarray, edge: int) -> np.ndarray:
    if edge <= 0 or not mask.any():
        return mask
    inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=edge, border_value=0)
    return inner if inner.any() else mask  # too thin to erode: keep what was drawn


def _window_of(geom: BaseGeometry, ds, margin: int) -> Window | None:
    """Whole-pixel window around a geometry, clipped to the raster (None when outside), grown by `margin` as
    the runtime reads around an area of interest (edges on its pixel grid): the network then sees a labelled
    pixel as it does when mapping the scene, so held-back scores are those of the map."""
    inv = ~ds.transform
    left, bottom, right, top = geom.bounds
    cols, rows = zip(
        *(inv * (x, y) for x, y in ((left, top), (right, bottom), (left, bottom), (right, top))), strict=True
    )
    col0, col1 = max(math.floor(min(cols)), 0), min(math.ceil(max(cols)), ds.width)
    row0, row1 = max(math.floor(min(rows)), 0), min(math.ceil(max(rows)), ds.height)
    if col1 <= col0 or row1 <= row0:
        return None
    grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
    return with_surroundings(Window(col0, row0, col1 - col0, row1 - row0), grid, margin)


def read_window(raster: InputRaster, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """The network input of a window (normalised as the runtime does, 0 where S1 is invalid) and its valid mask."""
    raw, ok = raster.read(window)
    x = prepare(raw, raster.spec, raster.linear, shift_db=raster.level_db)
    x[:, ~ok] = 0.0
    return x, ok


def open_raster(path: str | Path, card: ModelCard, notes: list[str]) -> InputRaster:
    """An S1 raster opened as the model's input; what the runtime would say of its units and level goes to `notes`."""
    spec = card.inputs[0]
    raster = open_input(path, spec, "S1")
    ds = raster.dataset
    whole = Window(0, 0, ds.width, ds.height)
    notes.extend(detect_units(raster, whole) + detect_level(raster, whole))  # Notes: str with a level
    return raster


def _join_overlaps(
    items: list[tuple[int, BaseGeometry, int]], notes: list[str]
) -> list[tuple[tuple[int, ...], BaseGeometry, int]]:
    """Features of one class that overlap or touch, joined into one (feature numbers, union, class), in the
    order of their first feature: a region is held back or trained whole, so no pixel may be in two."""
    if not items:
        return []
    geoms = [g for _, g, _ in items]
    left, right = STRtree(geoms).query(geoms, predicate="intersects")
    same = np.array([items[a][2] == items[b][2] for a, b in zip(left, right, strict=True)], bool)
    n = len(items)
    links = coo_matrix((np.ones(int(same.sum())), (left[same], right[same])), shape=(n, n))
    _, group = connected_components(links, directed=False)
    members: dict[int, list[int]] = {}
    for i, gi in enumerate(group.tolist()):
        members.setdefault(gi, []).append(i)
    joined = [
        (tuple(items[i][0] for i in m), geoms[m[0]] if len(m) == 1 else unary_union([geoms[i] for i in m]),
         items[m[0]][2])
        for m in members.values()
    ]  # fmt: skip
    shared = [m for m in members.values() if len(m) > 1]
    said = (
        f"{sum(map(len, shared))} label features overlap others of their class: joined into {len(shared)} "
        "(a joined area is held back or trained whole)"
    )
    if shared and said not in notes:  # once, however many rasters the labels lie on
        notes.append(said)
    return joined


def vector_regions(
    rasters: list[str | Path], labels: Path, field_name: str, card: ModelCard, edge: int = 1
) -> LabelSet:
    """Regions of the features of a polygon/point file (any CRS) on each raster they overlap."""
    features, crs = read_features(labels, field_name, card)
    notes: list[str] = []
    kept = [(g, c) for g, c in features if g.geom_type in ("Polygon", "MultiPolygon", "Point", "MultiPoint")]
    if len(kept) < len(features):
        notes.append(
            f"{len(features) - len(kept)} label feature(s) that are neither polygons nor points ignored"
        )
    regions: list[Region] = []
    used, overlapped = set(), set()
    for path in rasters:
        raster = open_raster(path, card, notes)
        try:
            ds = raster.dataset
            footprint = box(*ds.bounds)
            on_grid = []
            for k, (geom, cls) in enumerate(kept):
                g = shape(transform_geom(crs, ds.crs, mapping(geom)))
                if not g.is_valid:
                    g = g.buffer(0) if g.geom_type.endswith("Polygon") else g
                if g.is_empty or not g.intersects(footprint):
                    continue
                on_grid.append((k, g, cls))
            on_grid = _join_overlaps(on_grid, notes)
            for ks, g, cls in on_grid:
                window = _window_of(g, ds, MARGIN)
                if window is None:
                    continue
                transform = ds.window_transform(window)
                hw = (int(window.height), int(window.width))
                mask = (
                    rasterize([(mapping(g), 1)], out_shape=hw, transform=transform, fill=0, dtype="uint8") > 0
                )
                if g.geom_type.endswith("Polygon"):
                    mask = _erode(mask, edge)
                x, ok = read_window(raster, window)
                others = [mapping(o) for _, o, c in on_grid if c != cls and o.intersects(g)]
                drawn = mask & ok
                if others:  # pixels two classes claim are no one's
                    mask &= (
                        rasterize(
                            [(o, 1) for o in others], out_shape=hw, transform=transform, fill=0, dtype="uint8"
                        )
                        == 0
                    )
                mask &= ok
                if not mask.any():
                    if drawn.any():
                        overlapped.add(cls)
                    continue
                label = np.full(hw, IGNORE, np.int64)
                label[mask] = cls
                name = "feature" + ("s " if len(ks) > 1 else " ") + ", ".join(str(k + 1) for k in ks)
                regions.append(Region(name, cls, Path(path).name, x, label, window))
                used.update(ks)
        finally:
            raster.close()
    if not regions:
        raise InputError(
            f"the labels in {labels.name} lie outside the raster(s) (or only on nodata): "
            "no labelled pixel to train on"
        )
    if len(used) < len(kept):
        notes.append(
            f"{len(kept) - len(used)} of {len(kept)} label features cover no valid raster pixel; ignored"
        )
    return LabelSet(regions, labels.name, field_name, notes, overlapped)


def raster_regions(rasters: list[str | Path], labels: Path, card: ModelCard, edge: int = 1) -> LabelSet:
    """Regions of a label raster (values = card classes; -1, 255 and its nodata ignored), resampled by
    nearest neighbour onto each S1 raster; every connected patch of one class is a region."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    values = {c.value for c in card.classes}
    notes: list[str] = []
    regions: list[Region] = []
    try:
        src = rasterio.open(labels)
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"label raster is not a raster GDAL can read: {labels.name}") from exc
    with src:
        if src.crs is None:
            raise InputError(f"label raster {labels.name} has no coordinate reference system")
        if src.count != 1:
            raise InputError(
                f"label raster {labels.name} has {src.count} bands (a probability raster?): a label raster has "
                f"one band of classes ({_accepted(card)}; -1 or 255 = unlabelled)"
            )
        ignore = set(LABEL_NODATA) | (
            {int(src.nodata)} if src.nodata is not None and float(src.nodata).is_integer() else set()
        )
        for path in rasters:
            raster = open_raster(path, card, notes)
            try:
                ds = raster.dataset
                grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
                with WarpedVRT(src, crs=ds.crs, transform=ds.transform, width=ds.width, height=ds.height,
                               resampling=Resampling.nearest, nodata=255 if src.nodata is None else src.nodata) as vrt:  # fmt: skip
                    raw = vrt.read(1).astype(np.float64)
                raw[np.isnan(raw)] = LABEL_NODATA[1]  # NaN: a float raster's "no value"
                fractional = raw[np.isfinite(raw) & (raw != np.round(raw))]
                if fractional.size:  # never cut to whole numbers: 0.7 would silently become 0, dry
                    raise InputError(
                        f"label raster {labels.name} has fractional values (e.g. {fractional[0]:.3g}): a label "
                        f"raster holds classes ({_accepted(card)}; -1 or 255 = unlabelled)"
                    )
                lab = np.nan_to_num(raw, posinf=LABEL_NODATA[1], neginf=LABEL_NODATA[1]).astype(np.int64)
                unknown = sorted(set(np.unique(lab).tolist()) - values - ignore)
                if unknown:
                    raise InputError(
                        f"label raster {labels.name} has values the model's classes do not know: "
                        f"{', '.join(map(str, unknown[:5]))} (use {_accepted(card)}; -1 or 255 = unlabelled)"
                    )
                for cls in sorted(values):
                    patches, n = ndimage.label(lab == cls, structure=np.ones((3, 3), bool))
                    for k, sl in enumerate(ndimage.find_objects(patches), start=1):
                        rows, cols = sl
                        patch = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
                        window = with_surroundings(patch, grid, MARGIN)  # as _window_of: the map's view
                        r0, c0 = int(window.row_off), int(window.col_off)
                        r1, c1 = r0 + int(window.height), c0 + int(window.width)
                        mask = _erode(patches[r0:r1, c0:c1] == k, edge)
                        x, ok = read_window(raster, window)
                        mask &= ok
                        if not mask.any():
                            continue
                        label = np.full(mask.shape, IGNORE, np.int64)
                        label[mask] = cls
                        name = f"patch {k} of class {card.classes[cls].name}"
                        regions.append(Region(name, cls, Path(path).name, x, label, window))
            finally:
                raster.close()
    if not regions:
        raise InputError(f"the label raster {labels.name} has no labelled pixel inside the raster(s)")
    return LabelSet(regions, labels.name, None, notes)


def read_labels(
    rasters: list[str | Path], labels: str | Path, field_name: str, card: ModelCard, edge: int = 1
) -> LabelSet:
    """Regions from a vector file or a label raster, checked: two classes, enough pixels of each."""
    labels = Path(labels)
    if not labels.exists():
        raise InputError(f"label file not found: {labels}")
    if labels.suffix.lower() in RASTER_SUFFIXES:
        found = raster_regions(rasters, labels, card, edge)
    else:
        found = vector_regions(rasters, labels, field_name, card, edge)
    present = sorted({r.cls for r in found.regions})
    if len(present) < 2:
        only = card.classes[present[0]].name
        hidden = [card.classes[c].name for c in sorted(found.overlapped - set(present))]
        if hidden:
            raise InputError(
                f"every {hidden[0]} label overlaps {only} labels inside the raster(s), and pixels both classes "
                f"claim are dropped: draw {hidden[0]} and {only} polygons that do not overlap"
            )
        raise InputError(
            f"the labels hold only one class ({only}) inside the raster(s): label both "
            f"{' and '.join(c.name for c in card.classes)}"
        )
    for c in card.classes:
        n_regions, n_pixels = found.count(c.value)
        if n_pixels < MIN_PIXELS:
            raise InputError(
                f"too few labelled pixels of class {c.name}: {n_pixels} after the edge rule "
                f"(at least {MIN_PIXELS} needed; draw larger or more polygons)"
            )
    return found


def split_regions(
    found: LabelSet, share: float, rng: np.random.Generator
) -> tuple[list[Region], list[Region]]:
    """(train, held back): `share` of each class's regions held back (at least one), by region.

    A class with a single region cannot lose it: then nothing is held back and training runs without
    early stopping (the caller says so in the card).
    """
    train, val = [], []
    by_class: dict[int, list[Region]] = {}
    for r in found.regions:
        by_class.setdefault(r.cls, []).append(r)
    if share <= 0 or any(len(v) < 2 for v in by_class.values()):
        return list(found.regions), []
    for regions in by_class.values():
        order = rng.permutation(len(regions))
        k = min(max(1, round(share * len(regions))), len(regions) - 1)
        val += [regions[i] for i in order[:k]]
        train += [regions[i] for i in order[k:]]
    return train, val
