"""The classify-series job: a multi-date Sentinel-2 stack -> per-pixel index series -> recurrence plots -> ONNX
-> class raster. Windowed in pixel blocks, so memory is bounded by block size × dates, not by raster size.

Public API (used by the CLI and the QGIS Processing algorithm / plugin action):

    classify_series(stack, out, *, dates=None, aoi=None, model=None, config=None, progress=None,
                    is_cancelled=None) -> JobResult

`stack` is either
- a list of single-date rasters (2 or more): each an S2 raster whose bands are found by description
  (B02/B04/B08) or by full L1C/L2A band count, or a one-band raster already holding the model's index
  (e.g. NDVI). Dates come from `dates`, else from a date tag (DATE, ACQUISITION_DATE, SENSING_TIME,
  TIFFTAG_DATETIME), else from the file name (YYYYMMDD or YYYY-MM-DD);
- or one multi-band raster holding the index, one band per date; dates from `dates` or band descriptions.
Invalid dates per pixel: non-finite values, the dataset nodata (0 for S2 DNs), and a band described
'CLM'/'cloud' (non-zero = cloud) when present. The card's series contract (card.training['series'])
defines index, gap filling, resampling and normalisation. Output: uint8 classes of the card, 255 = nodata
(pixels without any valid date or outside the AOI), written atomically; progress(fraction) is called
after each block and is_cancelled() checked before each, raising Cancelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from . import tiled_job
from .aoi import AOI, aoi_mask
from .bands import S2L1C_BANDS, S2L2A_BANDS, describe_bands, normalise_band_name, resolve_bands
from .card import ModelCard, read_card
from .errors import Cancelled, InputError, ModelError
from .execution import Execution
from .indices import INDEX_BANDS, compute_index, fill_gaps, resample_series, to_reflectance
from .notes import Note, info, warning
from .outputs import (
    block_class_areas_km2,
    describe_classes,
)
from .pipeline import GDAL_CACHE_BYTES, JobResult, plan_outputs
from .preprocess import prepare
from .rasters import Grid, footprint_share, warp_onto
from .recurrence import recurrence_plot
from .registry import resolve_model
from .units import decide_s2

SERIES_KEY = "series"  # card.training[SERIES_KEY]: the series contract written by the exporter
TASK = "pixel_timeseries"
DATE_TAGS = ("DATE", "ACQUISITION_DATE", "SENSING_TIME", "DATETIME", "TIFFTAG_DATETIME")
DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
BLOCK = 64  # pixels per block side when the run config gives no tile size
BATCH = 1024  # plots per ONNX Runtime call
UNITS_SAMPLE = 512  # side of the central window read to decide an S2 date's units


def parse_date(text: str | None) -> date | None:
    """First plausible YYYY-MM-DD / YYYYMMDD date in `text`, else None."""
    for match in DATE_RE.finditer(text or ""):
        try:
            found = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
        if 1970 <= found.year <= 2100:
            return found
    return None


def _file_date(src: rasterio.io.DatasetReader, path: Path) -> date | None:
    tags = {k.upper(): v for k, v in src.tags().items()}
    for key in DATE_TAGS:
        if key in tags and parse_date(tags[key]):
            return parse_date(tags[key])
    return parse_date(path.stem)


@dataclass
class _Layer:
    """One date: where its bands are, how DNs become reflectance, or that it already holds the index."""

    src: Any  # dataset or WarpedVRT on the output grid
    day: date
    bands: dict[str, int]  # band name -> 1-based index (index mode: {'INDEX': band})
    cloud: int | None
    offset: float
    is_index: bool
    nodata: float | None
    scale: float = 1.0  # stored value x scale + add = reflectance x 10000 (+ offset): the file's and units'
    add: float = 0.0


def _as_list(stack: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [stack] if isinstance(stack, str | Path) else list(stack)
    if not items:
        raise InputError("the stack is empty: give one multi-band raster or several single-date rasters")
    paths = [Path(p) for p in items]
    for p in paths:
        if not p.is_file():
            raise InputError(f"stack raster not found: {p}")
    return paths


def _open(path: Path, stack: ExitStack):
    try:
        return stack.enter_context(rasterio.open(path))
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"not a readable raster: {path.name}") from exc


MIN_COVER = 0.999  # a date covering less of the first raster's footprint than this gets a note


def _on_grid(src, ref, stack: ExitStack, notes: list[Note]):
    """The dataset itself when it shares the reference grid, else a nearest-neighbour warp onto it
    (rasters.py). A date that misses the reference footprint is refused (it would silently be a gap at
    every pixel); one that covers part of it is taken with a note (its pixels outside are gaps, filled
    in time)."""
    name = Path(src.name).name
    if src.crs == ref.crs and src.transform == ref.transform and src.shape == ref.shape:
        return src
    if src.crs is None:
        raise InputError(f"{name} is on another grid and has no CRS to align it")
    grid = Grid(crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height)
    cover = footprint_share(src, grid)
    if cover <= 0:
        raise InputError(f"{name} does not overlap {Path(ref.name).name}, the first raster of the stack")
    if cover < MIN_COVER:
        notes.append(warning(f"{name} covers {cover:.0%} of the stack's footprint; pixels outside it have no "
                             "value on that date (gaps filled in time)"))  # fmt: skip
    return stack.enter_context(warp_onto(src, grid, Resampling.nearest))


def _reflectance_bands(
    descriptions: list[str | None], table: tuple[str, ...], needed: list[int]
) -> list[int]:
    """Every S2 band of the file (1-based), not only the index's: the +1000 offset is told from the darkest
    band, and a snowy or cloudy date is bright in red and NIR (one real Slovenia January scene: 1 % of red
    above 1500) while cirrus B10 or the SWIR bands stay near zero."""
    named = [k + 1 for k, d in enumerate(descriptions) if normalise_band_name(d) in table]
    if named:
        return named
    if len(descriptions) == len(table):
        return list(range(1, len(table) + 1))
    return needed


def _s2_units(src, idx: list[int], nodata: float, notes: list[Note]) -> tuple[float, float, float]:
    """(scale, add, offset) turning one date's stored values into reflectance x 10000, decided as for every
    other S2 input (models/units.py): the file's own scale/offset, then 8-bit refused, float 0..1 scaled,
    the +1000 offset found from the data. Sampled from a central window: one read, not the whole file."""
    name = Path(src.name).name
    scales = {float(src.scales[i - 1]) for i in idx}
    adds = {float(src.offsets[i - 1]) for i in idx}
    if len(scales) > 1 or len(adds) > 1:
        raise InputError(f"{name}: its Sentinel-2 bands carry different scale/offset metadata")
    scale, add = scales.pop(), adds.pop()
    scaled = scale != 1 or add != 0
    if scaled:
        notes.append(info(f"{name}: the file's scale/offset applied"))
    edge = min(UNITS_SAMPLE, src.width), min(UNITS_SAMPLE, src.height)
    win = Window((src.width - edge[0]) // 2, (src.height - edge[1]) // 2, *edge)
    raw = src.read(idx, window=win).reshape(len(idx), -1).astype(np.float64)
    raw = raw[:, np.all(np.isfinite(raw) & (raw != nodata), axis=0)] * scale + add
    units, more = decide_s2(raw, np.dtype(src.dtypes[idx[0] - 1]), scaled, name)
    notes.extend(more)
    if units.scale is not None:
        factor = float(units.scale.ravel()[0])
        scale, add = scale * factor, add * factor
    return scale, add, units.offset


def _single_date_layers(
    paths: list[Path], dates, indices: list[str], stack: ExitStack, notes: list[Note]
) -> list[_Layer]:
    needed = sorted({b for name in indices for b in INDEX_BANDS[name]})
    ref = None
    layers = []
    for i, path in enumerate(paths):
        src = _open(path, stack)
        ref = ref or src
        day = dates[i] if dates else _file_date(src, path)
        if day is None:
            raise InputError(f"no date for {path.name}: name it with YYYYMMDD, tag DATE, or pass dates")
        descriptions = list(src.descriptions)
        cloud = next(
            (
                k + 1
                for k, d in enumerate(descriptions)
                if d and d.strip().upper() in ("CLM", "CLOUD", "CLOUDS")
            ),
            None,
        )
        if src.count == 1 or (src.count == 2 and cloud is not None):
            if len(indices) != 1:
                raise InputError(f"{path.name} has one band but the model needs {', '.join(indices)}")
            band = 2 if cloud == 1 else 1
            layers.append(
                _Layer(_on_grid(src, ref, stack, notes), day, {"INDEX": band}, cloud, 0.0, True, src.nodata)
            )
            continue
        table = S2L2A_BANDS if src.count == len(S2L2A_BANDS) else S2L1C_BANDS
        found = resolve_bands(descriptions, table, needed)
        if found is None:
            raise InputError(
                f"{path.name}: cannot find S2 bands {', '.join(needed)} (by description or band count)"
            )
        bands = dict(zip(needed, found, strict=True))
        nodata = 0.0 if src.nodata is None else src.nodata
        sniffed = _reflectance_bands(descriptions, table, found)
        scale, add, offset = _s2_units(src, sniffed, nodata, notes)
        grid = _on_grid(src, ref, stack, notes)
        layers.append(_Layer(grid, day, bands, cloud, offset, False, nodata, scale, add))
    return layers


def _band_stack_layers(path: Path, dates, indices: list[str], stack: ExitStack) -> list[_Layer]:
    src = _open(path, stack)
    if len(indices) != 1:
        raise InputError(f"a one-file stack holds one index per date; the model needs {', '.join(indices)}")
    if any(normalise_band_name(d) for d in src.descriptions):
        raise InputError(
            f"{path.name} holds {describe_bands(list(src.descriptions))}, not one index per date; give several "
            "dated Sentinel-2 rasters, or one raster of a vegetation index with one band per date"
        )
    if dates is None:
        dates = [parse_date(d) for d in src.descriptions]
        if any(d is None for d in dates):
            raise InputError(f"{path.name}: band descriptions carry no dates; pass one date per band")
    if len(dates) != src.count:
        raise InputError(f"{path.name} has {src.count} bands but {len(dates)} dates were given")
    return [_Layer(src, d, {"INDEX": i + 1}, None, 0.0, True, src.nodata) for i, d in enumerate(dates)]


INDEX_RANGE = (-1.0, 1.0)
REFLECTANCE_P99 = (
    0.35  # a series whose values are all >= 0 and mostly below this is reflectance, not an index
)


def check_index_layers(layers: list[_Layer], name: str) -> None:
    """Index stacks must look like a vegetation index: values in -1..1, not reflectance 0..0.3 or DNs."""
    samples = []
    for layer in layers:
        if not layer.is_index:
            continue
        src = layer.src
        x = src.read(layer.bands["INDEX"], out_shape=(min(src.height, 64), min(src.width, 64))).astype(
            np.float64
        )
        ok = np.isfinite(x)
        if layer.nodata is not None and not np.isnan(layer.nodata):
            ok &= x != layer.nodata
        samples.append(x[ok])
    values = np.concatenate(samples) if samples else np.empty(0)
    if values.size == 0:
        return
    outside = float(np.mean((values < INDEX_RANGE[0]) | (values > INDEX_RANGE[1])))
    if outside > 0.01:
        raise InputError(
            f"{name}: {outside:.0%} of the values lie outside -1..1 (up to {values.max():g}): not a vegetation "
            "index; give NDVI per date, or S2 rasters with B04/B08"
        )
    p99 = float(np.quantile(values, 0.99))
    if values.min() >= 0 and p99 < REFLECTANCE_P99:
        raise InputError(
            f"{name}: every value is 0..{p99:.2f} with none negative, like red reflectance, not a vegetation index "
            "such as NDVI; give NDVI per date, or S2 rasters with B04/B08"
        )


def _read_block(layers: list[_Layer], indices: list[str], win: Window) -> tuple[np.ndarray, np.ndarray]:
    """(C, T, h, w) index values and (T, h, w) validity of one block."""
    h, w = int(win.height), int(win.width)
    values = np.full((len(indices), len(layers), h, w), np.nan, dtype=np.float32)
    valid = np.zeros((len(layers), h, w), dtype=bool)
    for t, layer in enumerate(layers):
        if layer.is_index:
            x = layer.src.read(layer.bands["INDEX"], window=win).astype(np.float32)
            ok = np.isfinite(x) & (x >= -1.5) & (x <= 1.5)  # indices live in about [-1, 1]
            if layer.nodata is not None and not np.isnan(layer.nodata):
                ok &= x != layer.nodata
            values[0, t] = x
        else:
            names = list(layer.bands)
            dn = layer.src.read([layer.bands[b] for b in names], window=win).astype(np.float32)
            ok = np.all(np.isfinite(dn) & (dn != layer.nodata), axis=0)
            if layer.scale != 1 or layer.add != 0:
                dn = dn * np.float32(layer.scale) + np.float32(layer.add)
            refl = {b: to_reflectance(dn[i], layer.offset) for i, b in enumerate(names)}
            for c, name in enumerate(indices):
                values[c, t] = compute_index(name, refl)
            ok &= np.all(np.isfinite(values[:, t]), axis=0)
        if layer.cloud is not None:
            ok &= layer.src.read(layer.cloud, window=win) == 0
        valid[t] = ok
    return values, valid


def _contract(card: ModelCard) -> dict[str, Any]:
    contract = card.training.get(SERIES_KEY)
    if card.task != TASK:
        raise InputError(f"model {card.name} is a '{card.task}' model, not a '{TASK}' model")
    if not isinstance(contract, dict) or "indices" not in contract or "n_steps" not in contract:
        raise ModelError(f"model card of {card.name} has no series contract (training.{SERIES_KEY})")
    unknown = [i for i in contract["indices"] if i not in INDEX_BANDS]
    if unknown:
        raise ModelError(f"model card of {card.name} asks for unknown indices {', '.join(unknown)}")
    return contract


def classify_series(
    stack: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    dates: Sequence[date | str] | None = None,
    aoi: AOI = None,
    model: str | Path | None = None,
    config: Execution | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> JobResult:
    """Classify every pixel of a multi-date stack from its index time series (see the module docstring)."""
    config, notes = (config or Execution()).checked()
    model_path = resolve_model(model, TASK)
    card = read_card(model_path)
    contract = _contract(card)
    paths = _as_list(stack)
    outputs = plan_outputs([*paths, aoi if isinstance(aoi, str | Path) else None, model_path], out)
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            result = _classify(paths, outputs, card, model_path, contract, dates, aoi, config, progress,
                               is_cancelled, notes)  # fmt: skip
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    return result


@dataclass
class _Model:
    """The series model of a run: the loaded session, its card, input and series contract."""

    loaded: Any
    card: ModelCard
    indices: list[str]
    n_steps: int


def _classify(paths, outputs, card, model_path, contract, dates, aoi, config, progress, is_cancelled, notes):
    """The series job on the tiled-job skeleton: layers on one grid, the extent, blocks, checks, result."""
    indices, n_steps = list(contract["indices"]), int(contract["n_steps"])
    dates = _parsed_dates(dates, paths)
    with ExitStack() as files:
        layers, days = _series_layers(paths, dates, indices, contract, files, notes)
        src = layers[0].src
        grid = Grid(crs=src.crs, transform=src.transform, width=src.width, height=src.height)
        where = tiled_job.extent(aoi, grid, notes)
        model = _Model(tiled_job.load(model_path, config), card, indices, n_steps)
        for raster_path in {str(f) for layer in layers for f in getattr(layer.src, "files", [])}:
            outputs.check_inputs([raster_path])
        dst = tiled_job.open_class_raster(files, outputs, grid, where, card)
        answers, areas = _write_blocks(
            dst, model, layers, days, where, config.tile_for(BLOCK), grid.crs, progress, is_cancelled
        )
        answers.check(card, notes, "no pixel has a valid date (inside the AOI)", share=False)
        describe_classes(dst, card, card.classes)
        codes = card.training.get("original_codes")
        if codes:
            dst.update_tags(original_codes=";".join(f"{k}={v}" for k, v in codes.items()))
    return JobResult(
        output=outputs.outputs[0].target, probabilities=None, polygons=None, statistics=None, model_name=card.name,
        provider=model.loaded.provider, card=card, classes=card.classes,
        class_area_km2={c.name: float(areas[c.value]) for c in card.classes}, flooded_km2=None,
        shape=(where.height, where.width), crs=grid.crs.to_string() if grid.crs else "",
        notes=[*notes, info(f"{len(layers)} dates from {layers[0].day} to {layers[-1].day}; index {', '.join(indices)}")],
    )  # fmt: skip


def _parsed_dates(dates, paths: list[Path]) -> list[date] | None:
    if dates is None:
        return None
    parsed = [d if isinstance(d, date) else parse_date(str(d)) for d in dates]
    if any(d is None for d in parsed):
        raise InputError("dates must be YYYY-MM-DD or YYYYMMDD")
    if len(paths) > 1 and len(parsed) != len(paths):
        raise InputError(f"{len(paths)} rasters but {len(parsed)} dates were given")
    return parsed


def _series_layers(paths, dates, indices, contract, files: ExitStack, notes: list[Note]):
    """The dated layers on the first raster's grid, in time order, checked; and their days from the first."""
    if len(paths) == 1:
        layers = _band_stack_layers(paths[0], dates, indices, files)
    else:
        layers = _single_date_layers(paths, dates, indices, files, notes)
    order = np.argsort([layer.day.toordinal() for layer in layers], kind="stable")
    layers = [layers[i] for i in order]
    days = np.array([(layer.day - layers[0].day).days for layer in layers], dtype=np.float64)
    check_index_layers(layers, paths[0].name if len(paths) == 1 else "the stack")
    if len({layer.day for layer in layers}) < int(contract.get("min_dates", 4)):
        raise InputError(f"the stack needs at least {contract.get('min_dates', 4)} distinct dates")
    if layers[0].src.crs is None:  # as every other job: a map without a place cannot be laid over anything
        raise InputError(f"raster has no coordinate reference system: {paths[0].name}")
    return layers, days


def _write_blocks(dst, model: _Model, layers, days, where, block: int, crs, progress, is_cancelled):
    """Classify and write the extent block by block: (the answers counted, the area per class)."""
    card = model.card
    answers = tiled_job.Answers()
    areas = np.zeros(len(card.classes))
    plots = np.empty((BATCH, len(model.indices), model.n_steps, model.n_steps), dtype=np.float32)  # reused
    blocks = [(r, c) for r in range(0, where.height, block) for c in range(0, where.width, block)]
    for k, (r, c) in enumerate(blocks):
        if is_cancelled is not None and is_cancelled():
            raise Cancelled("classify-series cancelled")
        out_block = Window(c, r, min(block, where.width - c), min(block, where.height - r))
        classes = _classify_block(model, layers, days, where, out_block, plots, answers)
        dst.write(classes, 1, window=out_block)
        areas += block_class_areas_km2(
            classes, [c.value for c in card.classes], crs, where.block_transform(out_block), 0
        )
        if progress is not None:
            progress((k + 1) / len(blocks))
    answers.valid = float(areas.sum())
    return answers, areas


def _classify_block(model: _Model, layers, days, where, out_block: Window, plots, answers) -> np.ndarray:
    """The classes of one block (nodata where no date is valid, outside the AOI or answered NaN)."""
    card, indices = model.card, model.indices
    h, w = int(out_block.height), int(out_block.width)
    win = Window(where.window.col_off + out_block.col_off, where.window.row_off + out_block.row_off, w, h)
    values, valid = _read_block(layers, indices, win)
    keep = valid.any(axis=0)
    if where.geometry is not None:
        keep &= aoi_mask(where.geometry, where.block_transform(out_block), (h, w))
    classes = np.full((h, w), card.output_nodata, dtype=np.uint8)
    rows = np.flatnonzero(keep.ravel())
    if not rows.size:
        return classes
    series = values.reshape(len(indices), len(layers), h * w)[:, :, rows]
    ok = valid.reshape(len(layers), h * w)[:, rows]
    filled = fill_gaps(np.moveaxis(series, 1, -1), np.broadcast_to(ok.T, series.shape[:1] + ok.T.shape), days)
    steps = np.moveaxis(resample_series(filled, days, model.n_steps), 0, 1)  # (N, C, S)
    labels = np.empty(rows.size, dtype=np.uint8)
    spec = card.inputs[0]
    for s in range(0, rows.size, BATCH):
        part = steps[s : s + BATCH]
        rp = recurrence_plot(part, out=plots[: len(part)])
        probs = model.loaded.run({spec.name: prepare(rp, spec)})
        answer = np.argmax(probs, axis=1).astype(np.uint8)
        nan = ~np.all(np.isfinite(probs), axis=1)  # a NaN answer is no class: nodata
        answer[nan] = card.output_nodata
        answers.nan_pixels += int(nan.sum())
        labels[s : s + len(part)] = answer
    answers.input_pixels += int(rows.size)
    classes.ravel()[rows] = labels
    return classes
