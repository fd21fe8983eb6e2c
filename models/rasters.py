"""Opening input rasters: checks, band mapping, unit detection and on-the-fly alignment to one grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from .bands import SENSOR_BANDS, resolve_bands
from .card import InputSpec
from .errors import InputError
from .notes import Note, info
from .preprocess import looks_linear, s2_offset, valid_mask

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
    linear: bool = False
    reader: rasterio.io.DatasetReaderBase | None = None
    offset: float = 0.0  # subtracted from S2 values that carry the baseline-04.00 offset
    label: str = ""  # how messages name this input ('S1', 'pre-event S1', ...)
    files: list[str] = field(default_factory=list)  # every file GDAL reads for it (VRT sources, sidecars)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Raw values (B, h, w) in card band order and the validity mask (h, w) for a window of the grid."""
        source = self.reader if self.reader is not None else self.dataset
        raw = source.read(self.band_indexes, window=window)
        ok = valid_mask(raw, self.nodata)  # nodata is judged on stored values, before the offset
        if self.offset:
            raw = raw.astype(np.float32) - np.float32(self.offset)
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
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{label} file is not a raster GDAL can read: {path.name}") from exc
    try:
        if dataset.crs is None:
            raise InputError(f"{label} raster has no coordinate reference system: {path.name}")
        sensor_bands = SENSOR_BANDS.get(spec.sensor, tuple(spec.bands))
        indexes = resolve_bands(list(dataset.descriptions), sensor_bands, spec.bands)
        if indexes is None:
            raise InputError(
                f"{label} raster {path.name} has {dataset.count} band(s); the model needs "
                f"{'/'.join(spec.bands)} (name them in band descriptions or give all "
                f"{len(sensor_bands)} {spec.sensor} bands in order)"
            )
        nodata = dataset.nodata
        if nodata is None and spec.sensor.startswith("S2"):
            nodata = 0.0  # Sentinel-2 products store no-data as 0 reflectance
        return InputRaster(spec=spec, path=path, dataset=dataset, band_indexes=indexes, nodata=nodata,
                           label=label, files=list(dataset.files))  # fmt: skip
    except Exception:
        dataset.close()
        raise


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


def detect_units(raster: InputRaster, window: Window) -> list[Note]:
    """Set `raster.linear` for S1 inputs in linear power, `raster.offset` for S2 inputs with the +1000 offset.

    Returns notes naming each conversion decided.
    """
    notes = []
    if raster.spec.sensor.startswith("S2"):
        offset, raster.offset = raster.offset, 0.0  # sniff the stored values, not offset-corrected ones
        raw, ok = sample(raster, window)
        raster.offset = s2_offset(raw[:, ok]) if ok.any() else offset
        if raster.offset:
            notes.append(info(f"{raster.path.name}: +{raster.offset:g} L1C offset detected and removed"))
        return notes
    if raster.spec.sensor != "S1" or raster.spec.units != "dB":
        return notes
    raw, ok = sample(raster, window)
    raster.linear = looks_linear(raw[:, ok])
    if raster.linear:
        notes.append(info(f"{raster.path.name}: linear backscatter detected, converted to dB"))
    return notes


def align(raster: InputRaster, grid: Grid) -> None:
    """Resample a non-reference input onto the grid on the fly (WarpedVRT), never by writing a copy."""
    ds = raster.dataset
    same_grid = (
        ds.crs == grid.crs and ds.transform.almost_equals(grid.transform)
        and ds.width == grid.width and ds.height == grid.height
    )  # fmt: skip
    if same_grid:
        return
    float_data = np.dtype(ds.dtypes[0]).kind == "f"
    nodata = np.nan if float_data else (raster.nodata if raster.nodata is not None else 0)
    raster.reader = WarpedVRT(
        ds, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
        resampling=Resampling.bilinear, src_nodata=ds.nodata, nodata=nodata,
    )  # fmt: skip
    raster.nodata = nodata


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
