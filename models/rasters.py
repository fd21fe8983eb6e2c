"""Opening input rasters: checks, band mapping, unit detection and on-the-fly alignment to one grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from .bands import (
    POLARISATION_ALIASES,
    SENSOR_BANDS,
    mentions_polarisation,
    normalise_band_name,
    resolve_bands,
)
from .card import InputSpec
from .errors import InputError
from .levels import MIN_PIXELS, Level, scene_level
from .notes import Note, info, warning
from .output_set import one_line
from .preprocess import to_db, valid_mask
from .units import decide_s1, decide_s2

SAMPLE_EDGE = 512  # decimated read used to sniff units and emptiness without reading the whole raster


@dataclass
class Grid:
    """The output grid: CRS, affine transform and size of the reference raster."""

    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    width: int
    height: int


@dataclass
class InputRaster:
    """One opened input: its card spec, band indexes, units and a reader aligned to the reference grid."""

    spec: InputSpec
    path: Path
    dataset: rasterio.io.DatasetReader
    band_indexes: list[int]
    nodata: float | None
    linear: bool = False  # S1 in linear power (after `amplitude` squaring): prepare() converts to dB
    reader: rasterio.io.DatasetReaderBase | None = None
    offset: float = 0.0  # subtracted from S2 values that carry the baseline-04.00 offset
    label: str = ""  # how messages name this input ('S1', 'pre-event S1', ...)
    files: list[str] = field(default_factory=list)  # every file GDAL reads for it (VRT sources, sidecars)
    scale: np.ndarray | None = None  # per band (B, 1, 1): the file's scale, dB × 100 -> dB, reflectance 0..1
    add: np.ndarray | None = None  # per band (B, 1, 1): the file's offset
    amplitude: bool = False  # S1 amplitude: squared to power
    level_db: float = 0.0  # the scene's level shift (models/levels.py), when the card asks for one
    notes: list[Note] = field(default_factory=list)  # what opening and aligning it decided (resampling)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Values (B, h, w) in card band order and units, and the validity mask (h, w) for a window of the grid."""
        source = self.reader if self.reader is not None else self.dataset
        try:
            raw = source.read(self.band_indexes, window=window)
        except (RasterioError, CPLE_BaseError) as exc:
            detail = one_line(exc.__cause__ or exc)
            raise InputError(
                f"{self.label} raster {self.path.name} cannot be read (truncated or damaged?): {detail}"
            ) from exc
        ok = valid_mask(raw, self.nodata)  # nodata is judged on stored values, before any conversion
        if self.scale is not None or self.add is not None or self.offset or self.amplitude:
            raw = raw.astype(np.float32)
            if self.scale is not None:
                raw *= self.scale
            if self.add is not None:
                raw += self.add
            if self.offset:
                raw -= np.float32(self.offset)
            if self.amplitude:
                np.square(raw, out=raw)
        return raw, ok

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.dataset.close()


def open_input(path: str | Path, spec: InputSpec, label: str) -> InputRaster:
    """Open and check one input raster for a card input; `label` names it in messages (e.g. 'S1')."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{label} raster not found: {path}")
    if path.is_dir():
        raise InputError(f"{label} raster path is a folder, not a file: {path}")
    try:
        dataset = rasterio.open(path)
    except (RasterioError, CPLE_BaseError) as exc:
        raise InputError(f"{label} file is not a raster GDAL can read: {path.name}") from exc
    try:
        check_georeferencing(dataset, label, path.name)
        indexes = _band_indexes(dataset, spec, label, path.name)
        nodata = dataset.nodata
        if nodata is None and spec.sensor.startswith("S2"):
            nodata = 0.0  # Sentinel-2 products store no-data as 0 reflectance
        return InputRaster(spec=spec, path=path, dataset=dataset, band_indexes=indexes, nodata=nodata,
                           label=label, files=list(dataset.files))  # fmt: skip
    except Exception:
        dataset.close()
        raise


def check_georeferencing(dataset, label: str, name: str) -> None:
    """A usable input has a CRS and a north-up geotransform, and every file it refers to exists."""
    missing = [f for f in dataset.files[1:] if not f.startswith("/vsi") and not Path(f).exists()]
    if missing:
        raise InputError(f"{label} raster {name} refers to a file that does not exist: {missing[0]}")
    gcps, _ = dataset.gcps
    if dataset.transform.is_identity and gcps:
        raise InputError(
            f"{label} raster {name} is georeferenced by ground control points only; warp it first (gdalwarp)"
        )
    if dataset.crs is None:
        raise InputError(f"{label} raster has no coordinate reference system: {name}")
    if dataset.transform.is_identity:
        raise InputError(f"{label} raster {name} has a CRS but no geotransform (pixel positions are unknown)")
    if dataset.transform.b != 0 or dataset.transform.d != 0:
        raise InputError(
            f"{label} raster {name} has a rotated geotransform; warp it to north-up first (gdalwarp)"
        )


def _band_indexes(dataset, spec: InputSpec, label: str, name: str) -> list[int]:
    """Card bands of `spec` in a raster: by description, else by a sensor table whose length is the band count."""
    descriptions = list(dataset.descriptions)
    names = [normalise_band_name(d) for d in descriptions]
    if spec.sensor == "S1" and {"HH", "HV"} & set(names) and not {"VV", "VH"} <= set(names):
        found = "/".join(n for n in names if n in ("HH", "HV"))
        raise InputError(
            f"{label} raster {name} holds {found} polarisation(s); the model needs {'/'.join(spec.bands)}"
        )
    tables = [SENSOR_BANDS.get(spec.sensor, tuple(spec.bands))]
    if spec.sensor.startswith("S2"):  # L1C (13 bands) and L2A (12, no B10) both map by count
        tables += [t for k, t in SENSOR_BANDS.items() if k.startswith("S2") and t not in tables]
    for table in tables:
        indexes = resolve_bands(descriptions, table, spec.bands)
        if indexes is not None:
            return indexes
    if spec.sensor == "S1":
        other = next(((i, d) for i, d in enumerate(descriptions, 1) if mentions_polarisation(d)
                      and not normalise_band_name(d)), None)  # fmt: skip
        if other is not None:
            raise InputError(
                f"{label} raster {name}: band {other[0]} is described {other[1]!r}, which names another "
                f"quantity than {'/'.join(spec.bands)} backscatter; accepted descriptions: {POLARISATION_ALIASES}"
            )
    missing = [b for b in spec.bands if b not in names]
    if spec.sensor.startswith("S2") and "B10" in spec.bands:
        l2a_names = set(SENSOR_BANDS["S2L2A"]) <= set(names)  # every L2A band named, B10 not
        if (dataset.count == len(SENSOR_BANDS["S2L2A"]) and not any(names)) or (
            l2a_names and missing == ["B10"]
        ):
            raise InputError(
                f"{label} raster {name} looks like L2A (no B10 band); the model needs B10, i.e. L1C input "
                "(use a model without B10, see `contrasat models`)"
            )
    table = tables[0]
    if any(names):
        raise InputError(
            f"{label} raster {name} has {dataset.count} band(s), described {', '.join(n for n in names if n)}; "
            f"the model needs {'/'.join(spec.bands)}: {', '.join(missing)} missing"
        )
    raise InputError(
        f"{label} raster {name} has {dataset.count} band(s); the model needs "
        f"{'/'.join(spec.bands)} (name them in band descriptions or give all "
        f"{len(table)} {spec.sensor} bands in order)"
    )


def sample(raster: InputRaster, window: Window | None = None, grid: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Raw values (B, N) and validity (N,) of a spread sample of a window, for sniffing units.

    A small window is read whole; a large one through grid × grid patches spread over it, so the cost
    does not grow with the raster (a decimated read would decode every block of the file).
    """
    source = raster.reader if raster.reader is not None else raster.dataset
    window = window or Window(0, 0, source.width, source.height)
    col0, row0 = int(window.col_off), int(window.row_off)
    width, height = int(window.width), int(window.height)
    edge = SAMPLE_EDGE // grid
    if width * height <= SAMPLE_EDGE * SAMPLE_EDGE:
        patches = [Window(col0, row0, width, height)]
    else:
        pw, ph = min(edge, width), min(edge, height)
        cols = np.linspace(col0, col0 + width - pw, grid).astype(int)
        rows = np.linspace(row0, row0 + height - ph, grid).astype(int)
        patches = [Window(int(c), int(r), pw, ph) for r in rows for c in cols]
    raws, oks = [], []
    for patch in patches:
        raw, ok = raster.read(patch)
        raws.append(raw.reshape(raw.shape[0], -1))
        oks.append(ok.ravel())
    return np.concatenate(raws, axis=1), np.concatenate(oks)


def has_valid_pixels(raster: InputRaster, window: Window, block: int = 256) -> bool:
    """Exact check, block by block, that a window holds at least one valid pixel."""
    for row in range(int(window.row_off), int(window.row_off + window.height), block):
        h = min(block, int(window.row_off + window.height) - row)
        for col in range(int(window.col_off), int(window.col_off + window.width), block):
            w = min(block, int(window.col_off + window.width) - col)
            _, ok = raster.read(Window(col, row, w, h))
            if ok.any():
                return True
    return False


NODATA_SENTINELS = (-9999.0, -32768.0, -32767.0, 0.0)  # fill values products use without declaring them
SENTINEL_SHARE = 0.001


def undeclared_nodata(raw: np.ndarray, ok: np.ndarray) -> float | None:
    """A fill value (e.g. -9999, or 0 borders) found in every band of some pixels of a raster that declares
    no nodata: no real backscatter is exactly that in every band, so such pixels are no data."""
    if raw.size == 0:
        return None
    for sentinel in NODATA_SENTINELS:
        hit = np.all(raw == sentinel, axis=0) & ok
        if (
            float(np.mean(hit)) >= SENTINEL_SHARE and hit.sum() < ok.sum()
        ):  # all-fill rasters are refused later
            return sentinel
    return None


def detect_units(raster: InputRaster, window: Window) -> list[Note]:
    """Decide once how the raster's stored values become the card's units (see units.py); return notes.

    The file's own scale/offset metadata is applied first; then S1 is told apart as dB (× 1, 10, 100),
    linear power or amplitude, and S2 as reflectance × 10000 (with or without +1000) or float 0..1.
    """
    ds, name = raster.dataset, raster.path.name
    raster.scale = raster.add = None
    raster.offset, raster.linear, raster.amplitude = 0.0, False, False
    notes: list[Note] = []
    scales = np.array([ds.scales[i - 1] for i in raster.band_indexes], dtype=np.float32)[:, None, None]
    adds = np.array([ds.offsets[i - 1] for i in raster.band_indexes], dtype=np.float32)[:, None, None]
    scaled = bool(np.any(scales != 1) or np.any(adds != 0))
    if scaled:
        raster.scale, raster.add = scales, adds
        notes.append(info(f"{name}: the file's scale/offset applied"))
    raw, ok = sample(raster, window)
    if raster.nodata is None and raster.spec.sensor == "S1":
        sentinel = undeclared_nodata(raw, ok)
        if sentinel is not None:
            raster.nodata = sentinel
            notes.append(
                warning(
                    f"{name}: no nodata declared; pixels where every band is {sentinel:g} treated as nodata"
                )
            )
            raw, ok = sample(raster, window)
    values = raw[:, ok]
    dtype = np.dtype(ds.dtypes[raster.band_indexes[0] - 1])
    if raster.spec.sensor.startswith("S2"):
        units, more = decide_s2(values, dtype, scaled, name)
    elif raster.spec.sensor == "S1" and raster.spec.units == "dB":
        units, more = decide_s1(values, list(raster.spec.bands), dtype, scaled, name)
    else:
        return notes
    if units.scale is not None:
        raster.scale = units.scale if raster.scale is None else raster.scale * units.scale
        if raster.add is not None:
            raster.add = raster.add * units.scale
    raster.offset, raster.linear, raster.amplitude = units.offset, units.linear, units.amplitude
    return notes + more


def detect_level(raster: InputRaster, window: Window) -> list[Note]:
    """The scene's level shift from the same spread sample the units were decided on (once per run, so the
    map does not depend on tiling); a note when it moves the data, a warning when the level cannot be
    found or trusted (a raster cut from a larger scene may then map otherwise than the whole scene)."""
    raster.level_db = 0.0
    if not raster.spec.level:
        return []
    raw, ok = sample(raster, window)
    values = raw[:, ok].astype(np.float32)
    if raster.linear:
        values = to_db(values)
    level = scene_level(values, list(raster.spec.bands), raster.spec.level)
    raster.level_db = level.shift
    notes = []
    if level.shift:
        rule = raster.spec.level
        notes.append(info(f"{raster.label} raster {raster.path.name}: dry-land {rule['band']} peak at "
                          f"{level.peak_db:.2f} dB, shifted {level.shift:+.2f} dB to the model's "
                          f"{rule['reference_db']:g} dB (scene level alignment)"))  # fmt: skip
    if level.kind is not None:
        notes.append(warning(_level_doubt(raster, level, values.shape[1])))
    return notes


WHOLE_SCENE = (
    "if it is cut from a larger scene, map the whole scene with this area as the area of interest, so the "
    "level comes from the whole scene"
)


def _level_doubt(raster: InputRaster, level: Level, pixels: int) -> str:
    """Why a raster's dry-land level could not be found or trusted, and what to do (job-summary words)."""
    rule, name = raster.spec.level, f"{raster.label} raster {raster.path.name}"
    band, ref = rule["band"], rule["reference_db"]
    if level.kind == "small":
        why = (f"{pixels} valid pixels are too few to find its dry-land level (at least {MIN_PIXELS} "
               "are needed); mapped at its own level")  # fmt: skip
    elif level.kind == "no_peak":
        why = (f"no dry-land {band} peak within {rule['bound_db']:g} dB of the model's {ref:g} dB (mostly "
               "water, or too uniform to tell); mapped at its own level")  # fmt: skip
    elif level.kind == "lone_dark":
        why = (f"its only {band} peak, at {level.peak_db:.2f} dB, is too dark to be sure it is dry land and "
               "not water; mapped at its own level")  # fmt: skip
    elif level.kind == "lone_raised":
        why = (f"its only {band} peak, at {level.peak_db:.2f} dB, was taken as dry land under a calibration "
               "offset; if the raster is mostly water, that peak is water and the map has too little")  # fmt: skip
    else:
        why = (f"its dry-land {band} level is uncertain (the peak moves by {level.spread_db:.2f} dB between "
               "parts of the raster: much water or mixed land covers); a raster cut from it may map "
               "differently")  # fmt: skip
    return f"{name}: {why}; {WHOLE_SCENE}"


PRE_EVENT_MAX_RATIO = 2.5  # a pre-event raster coarser than this many grid pixels is refused


def _pixel_ratio(raster: InputRaster, grid: Grid) -> float:
    """How many grid pixels one pixel of the raster spans (side length), measured in the grid's CRS."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(raster.dataset.crs, grid.crs, *raster.dataset.bounds)
    own = np.sqrt(abs((right - left) / raster.dataset.width * (top - bottom) / raster.dataset.height))
    return float(own / np.sqrt(abs(grid.transform.a * grid.transform.e)))


def align(raster: InputRaster, grid: Grid) -> None:
    """Resample a non-reference input onto the grid on the fly (WarpedVRT), never by writing a copy.

    Pixels of another size are resampled bilinearly with a note; a pre-event raster (compared pixel by
    pixel with the event) coarser than PRE_EVENT_MAX_RATIO grid pixels is refused: its blurred water edges
    would show as a band of false new flood."""
    ds = raster.dataset
    same_grid = (
        ds.crs == grid.crs and ds.transform.almost_equals(grid.transform)
        and ds.width == grid.width and ds.height == grid.height
    )  # fmt: skip
    if same_grid:
        return
    ratio = _pixel_ratio(raster, grid)
    pre_event = raster.label.startswith("pre-event")
    if pre_event and ratio > PRE_EVENT_MAX_RATIO:
        raise InputError(
            f"{raster.label} raster {raster.path.name} has pixels {ratio:.2g} times the size of the event's; "
            f"at most {PRE_EVENT_MAX_RATIO:g} is compared pixel by pixel (a coarser reference shows its "
            "water edges as false new flood): use a pre-event scene at the event's resolution"
        )
    if not 0.9 <= ratio <= 1.1:
        edge = (" Along water edges, up to one pre-event pixel may show as new flood that is not: check "
                "new flood next to permanent water.") if pre_event and ratio > 1.1 else ""  # fmt: skip
        raster.notes.append(
            warning(
                f"{raster.label} raster {raster.path.name}: pixels {ratio:.2g} times the size of the "
                f"output grid's, resampled bilinearly onto it.{edge}"
            )  # fmt: skip
        )
    float_data = np.dtype(ds.dtypes[0]).kind == "f"
    nodata = np.nan if float_data else (raster.nodata if raster.nodata is not None else 0)
    raster.reader = warp_onto(ds, grid, Resampling.bilinear, src_nodata=ds.nodata, nodata=nodata)
    raster.nodata = nodata


def warp_onto(dataset, grid: Grid, resampling: Resampling, **nodata: Any) -> WarpedVRT:
    """The dataset resampled onto the grid on the fly (a WarpedVRT, never a written copy)."""
    return WarpedVRT(dataset, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                     resampling=resampling, **nodata)  # fmt: skip


def footprint_share(dataset, grid: Grid) -> float:
    """Share of the grid's footprint inside the dataset's footprint (both in the grid's CRS)."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(dataset.crs, grid.crs, *dataset.bounds)
    south, west, north, east = _sorted_bounds(array_bounds(grid.height, grid.width, grid.transform))
    w = max(0.0, min(right, east) - max(left, west))
    h = max(0.0, min(top, north) - max(bottom, south))
    return w * h / ((east - west) * (north - south))


def _sorted_bounds(bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """(south, west, north, east) of array_bounds' (west, south, east, north)."""
    west, south, east, north = bounds
    return min(south, north), min(west, east), max(south, north), max(west, east)


def reference_grid(raster: InputRaster) -> Grid:
    ds = raster.dataset
    return Grid(crs=ds.crs, transform=ds.transform, width=ds.width, height=ds.height)


def check_overlap(raster: InputRaster, grid: Grid, label: str) -> None:
    """An aligned input must cover some of the grid; otherwise the job cannot use it."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(raster.dataset.crs, grid.crs, *raster.dataset.bounds)
    g_left, g_top = grid.transform * (0, 0)
    g_right, g_bottom = grid.transform * (grid.width, grid.height)
    g_left, g_right = min(g_left, g_right), max(g_left, g_right)
    g_bottom, g_top = min(g_bottom, g_top), max(g_bottom, g_top)
    if right <= g_left or left >= g_right or top <= g_bottom or bottom >= g_top:
        raise InputError(f"{label} raster {raster.path.name} does not overlap the reference raster")
