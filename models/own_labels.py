"""An analyst's training labels for land cover in their own classes: a polygon or point layer with a class
field (text names or integer codes) and optionally a colour field, in any CRS.

`read_labels` reads the layer and decides the classes (names, colours, order) before any raster is opened;
`label_pixels` (own_pixels.py) puts the features on the output grid. Every refusal here is one InputError line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rasterio.crs import CRS
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .card import ClassInfo
from .errors import InputError

COLOUR_FIELDS = ("color", "colour", "hex", "rgb")  # matched case-insensitively
HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
# A clear qualitative palette (ColorBrewer Set1, then Dark2): distinct hues, none close to white or black.
PALETTE = (
    "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf", "#999999",
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
)  # fmt: skip
POINT_TYPES = ("Point", "MultiPoint")
POLYGON_TYPES = ("Polygon", "MultiPolygon")


@dataclass
class LabelFeature:
    """One label feature: its geometry in the layer's CRS, its class index and its number in the file."""

    geometry: BaseGeometry
    cls: int
    number: int  # 1-based position in the file: messages and validation groups name features by it


@dataclass
class LabelLayer:
    """The label layer read: classes (0..C-1, user's names and colours), features and the layer's CRS."""

    path: Path
    field: str
    classes: list[ClassInfo]
    features: list[LabelFeature]
    crs: CRS | None  # None: the file names no CRS (taken as the raster's)
    codes: list[int] | None  # the user's integer code of each class, when the field holds codes
    ignored: int = 0  # features that are neither polygons nor points

    def counts(self) -> list[int]:
        """Features per class."""
        return [sum(f.cls == c.value for f in self.features) for c in self.classes]


def _as_code(value: object) -> int | None:
    """An integer class code from an int, an integral float or an integer-like text; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _class_keys(values: list[object], field: str, name: str) -> tuple[list[object], bool]:
    """Class keys (int codes or stripped texts) of the values and whether they are codes; mixed refused."""
    codes = [_as_code(v) for v in values]
    numeric = [isinstance(v, int | float) and not isinstance(v, bool) for v in values]
    if all(c is not None for c in codes):
        return codes, True
    if any(numeric) or any(c is not None for c in codes):
        bad = next(v for v, c in zip(values, codes, strict=True) if c is None)
        raise InputError(
            f"class field '{field}' of {name} mixes integer codes and other values (e.g. {bad!r}): "
            "use either class names or integer codes"
        )
    return [str(v).strip() for v in values], False


def _colour(value: object) -> str | None:
    match = HEX.fullmatch(str(value).strip()) if value is not None else None
    return f"#{match.group(1).lower()}" if match else None


def _colour_field(fields: list[str], field: str) -> str | None:
    lowered = {f.lower(): f for f in fields if f != field}
    return next((lowered[c] for c in COLOUR_FIELDS if c in lowered), None)


def _read_layer(path: Path, field: str) -> tuple[list[tuple[BaseGeometry, object, object]], CRS, str | None]:
    """(geometry, class value, colour value) of every feature with a geometry, the CRS, the colour field."""
    import fiona

    try:
        with fiona.open(path) as src:
            schema = src.schema["properties"]
            fields = list(schema)
            if field not in fields:
                raise InputError(
                    f"label file {path.name} has no field '{field}' (fields: {', '.join(fields) or 'none'})"
                )
            if schema[field].split(":")[0] == "json":  # GeoJSON values of several types (e.g. 3 and "crop")
                raise InputError(
                    f"class field '{field}' of {path.name} holds values of mixed types (numbers and text)"
                )
            colour_field = _colour_field(fields, field)
            crs = _layer_crs(src.crs_wkt, path)
            rows = [
                (shape(f["geometry"]), f["properties"][field],
                 f["properties"][colour_field] if colour_field else None)
                for f in src if f["geometry"] is not None
            ]  # fmt: skip
    except InputError:
        raise
    except Exception as exc:  # fiona, GDAL and JSON errors of a damaged or foreign file
        raise InputError(f"label file is not a readable vector file: {path.name}") from exc
    return rows, crs, colour_field


def _layer_crs(wkt: str, path: Path) -> CRS | None:
    if not wkt:  # GeoJSON without a crs member is WGS 84 by definition; other files just lack one
        return CRS.from_epsg(4326) if path.suffix.lower() in (".geojson", ".json") else None
    try:
        return CRS.from_wkt(wkt)
    except Exception as exc:
        raise InputError(f"label file {path.name} has a CRS that cannot be read") from exc


def read_labels(path: str | Path, field: str) -> LabelLayer:
    """The label layer of `path`: classes from `field` (two or more), colours from a colour field when present."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"label file not found: {path}")
    rows, crs, colour_field = _read_layer(path, field)
    if not rows:
        raise InputError(f"label file {path.name} holds no feature with a geometry")
    missing = [i + 1 for i, (_, v, _) in enumerate(rows) if v is None or str(v).strip() == ""]
    if missing:
        raise InputError(
            f"{len(missing)} feature(s) of {path.name} have no value in class field '{field}' "
            f"(feature {', '.join(map(str, missing[:5]))}{', ...' if len(missing) > 5 else ''})"
        )
    keys, codes = _class_keys([v for _, v, _ in rows], field, path.name)
    ordered = sorted(set(keys), key=lambda k: k if codes else str(k).lower())
    if len(ordered) < 2:
        raise InputError(
            f"the labels in {path.name} hold a single class ({ordered[0]}): draw at least two classes"
        )
    index = {k: i for i, k in enumerate(ordered)}
    colours: dict[int, str] = {}
    for (_, _, colour), key in zip(rows, keys, strict=True):
        if colour_field and index[key] not in colours and _colour(colour):
            colours[index[key]] = _colour(colour)
    classes = [ClassInfo(i, str(k), colours.get(i, PALETTE[i % len(PALETTE)])) for i, k in enumerate(ordered)]
    features, ignored = [], 0
    for number, ((geom, _, _), key) in enumerate(zip(rows, keys, strict=True), start=1):
        if geom.is_empty or geom.geom_type not in POLYGON_TYPES + POINT_TYPES:
            ignored += 1
            continue
        features.append(LabelFeature(geom, index[key], number))
    return LabelLayer(path, field, classes, features, crs, list(ordered) if codes else None, ignored)
