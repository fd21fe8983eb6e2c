"""The jobs: map floods and land cover from input rasters to finished, georeferenced outputs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from . import tiled_job
from .aoi import AOI, AOIMask
from .card import ClassInfo, ModelCard, read_card
from .errors import InputError
from .execution import Execution
from .inference import run_tiled
from .notes import Note
from .notes import warning as note_warning
from .output_set import OutputSet, same_file, verify_raster, verify_table, verify_vector, writing
from .outputs import (
    block_class_areas_km2,
    describe_classes,
    probability_profile,
    write_statistics,
)
from .polygons import DEFAULT_MIN_PIXELS, write_polygons
from .rasters import (
    Grid,
    InputRaster,
    align,
    check_overlap,
    detect_level,
    detect_units,
    has_valid_pixels,
    open_input,
    reference_grid,
)
from .registry import resolve_model
from .tiling import small_extent_note


def class_argmax(probs: np.ndarray) -> np.ndarray:
    """uint8 argmax over the class axis of (C, H, W); a running comparison beats np.argmax on axis 0 here."""
    best = probs[0].copy()
    classes = np.zeros(best.shape, dtype=np.uint8)
    for value in range(1, probs.shape[0]):
        better = probs[value] > best
        classes[better] = value
        np.maximum(best, probs[value], out=best)
    return classes


# Output classes of a flood map made with a pre-event reference (same model run on both dates).
CHANGE_CLASSES = [
    ClassInfo(0, "dry", "#00000000"),
    ClassInfo(1, "flood water", "#00b4ffff"),
    ClassInfo(2, "permanent water", "#0b2c7aff"),
]


def change_classes(post: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """0 dry, 1 new flood water (water after, not before), 2 permanent water (water on both dates)."""
    out = np.zeros(post.shape, dtype=np.uint8)
    post_water, pre_water = post >= 1, pre >= 1
    out[post_water & ~pre_water] = 1
    out[post_water & pre_water] = 2
    return out


GDAL_CACHE_BYTES = 64 * 1024 * 1024
MIB = 1024 * 1024
log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a finished job produced and measured."""

    output: Path
    probabilities: Path | None
    polygons: Path | None
    statistics: Path | None
    model_name: str
    provider: str
    card: ModelCard
    classes: list[ClassInfo]  # the output raster's class table (the card's, or CHANGE_CLASSES)
    class_area_km2: dict[str, float]
    flooded_km2: float | None
    shape: tuple[int, int]
    crs: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The job summary as plain JSON-ready data (the CLI's --json and progress 'done' event)."""
        return {
            "task": self.card.task,
            "outputs": {
                "classes": str(self.output),
                "probabilities": str(self.probabilities) if self.probabilities else None,
                "polygons": str(self.polygons) if self.polygons else None,
                "statistics": str(self.statistics) if self.statistics else None,
            },
            "model": self.model_name,
            "provider": self.provider,
            "shape": list(self.shape),
            "crs": self.crs,
            "classes": [{"value": c.value, "name": c.name, "color": c.color} for c in self.classes],
            "class_area_km2": self.class_area_km2,
            "flooded_km2": self.flooded_km2,
            "notes": [{"level": getattr(n, "level", "info"), "text": str(n)} for n in self.notes],
        }

    exit_code = 0  # a map was written

    def text_lines(self) -> list[str]:
        """The job summary as the CLI prints it: files written, model, area per class, notes."""
        lines = [f"wrote {self.output} ({self.shape[1]}x{self.shape[0]} px, {self.crs})"]
        lines += [f"wrote {p}" for p in (self.probabilities, self.polygons, self.statistics) if p]
        lines.append(f"model {self.model_name} on {self.provider}")
        lines += [f"  {name:<20} {km2:10.3f} km²" for name, km2 in self.class_area_km2.items()]
        if self.flooded_km2 is not None:
            lines.append(f"flooded area: {self.flooded_km2:.3f} km²")
        return lines + [f"note: {note}" for note in self.notes]


def plan_outputs(
    inputs: list[str | Path | None],
    out: str | Path,
    probabilities: str | Path | None = None,
    polygons: str | Path | None = None,
    statistics: str | Path | None = None,
) -> OutputSet:
    """Check every output of a job before anything runs: format, folder, clashes with inputs and each other."""
    outputs = OutputSet()
    outputs.check_inputs(inputs)
    outputs.add("output", out, "raster")
    if probabilities is not None:
        outputs.add("probabilities", probabilities, "raster")
    if polygons is not None:
        outputs.add("polygons", polygons, "vector")
    if statistics is not None:
        outputs.add("statistics", statistics, "table")
    return outputs


def run_job(
    task: str,
    sources: dict[str, str | Path | None],
    out: str | Path,
    *,
    aoi: AOI = None,
    pre_event: str | Path | None = None,
    model: str | Path | None = None,
    probabilities: str | Path | None = None,
    polygons: str | Path | None = None,
    statistics: str | Path | None = None,
    min_polygon: int = DEFAULT_MIN_PIXELS,
    config: Execution | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> JobResult:
    """Run the model of `task` on `sources` ({'S1': path, 'S2': path}) and write the outputs, all or none.

    `pre_event` (flood only): an S1 raster of the same place before the event; the model runs on both
    dates and the output separates new flood water from permanent water (CHANGE_CLASSES).
    `min_polygon`: regions smaller than this many pixels are left out of the polygon file only.
    """
    config, notes = (config or Execution()).checked()
    if min_polygon < 1:
        raise InputError(f"the smallest polygon must be 1 pixel or more, not {min_polygon}")
    model_path = resolve_model(model, task)
    card = read_card(model_path)
    if card.task != task:
        raise InputError(f"model {card.name} is a '{card.task}' model, not a '{task}' model")
    aoi_file = aoi if isinstance(aoi, str | Path) else None
    outputs = plan_outputs(
        [*sources.values(), pre_event, aoi_file, model_path], out, probabilities, polygons, statistics
    )
    try:
        # GDAL's block cache would otherwise grow with the raster (default: 5% of RAM); windowed reading
        # and strip-wise writing need only a few tiles of it.
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            result = _run_job(task, sources, outputs, card=card, model_path=model_path, aoi=aoi,
                              pre_event=pre_event, config=config, progress=progress,
                              is_cancelled=is_cancelled, notes=notes, min_polygon=min_polygon)  # fmt: skip
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    return result


def _open_inputs(
    card: ModelCard,
    sources: dict[str, str | Path | None],
    pre_event: str | Path | None,
    stack: ExitStack,
    outputs: OutputSet,
) -> tuple[list[InputRaster], list[list[InputRaster]], Grid]:
    """Open every input the card needs, align them to the reference grid; (inputs, input sets, grid)."""
    inputs: list[InputRaster] = []
    for spec in card.inputs:
        prefix = spec.sensor[:2]
        path = sources.get(prefix)
        if path is None:
            raise InputError(f"model {card.name} needs a {prefix} raster ({'/'.join(spec.bands)})")
        raster = open_input(path, spec, prefix)
        stack.callback(raster.close)
        outputs.check_inputs(raster.files)
        inputs.append(raster)
    # Output grid: S1 when the model reads it, else the first input.
    reference = next((r for r in inputs if r.spec.sensor == "S1"), inputs[0])
    grid = reference_grid(reference)
    for raster in inputs:
        if raster is not reference:
            check_overlap(raster, grid, raster.spec.sensor[:2])
            align(raster, grid)
    input_sets = [inputs]
    if pre_event is not None:
        if card.task != "flood" or card.input_for("S1") is None or len(card.inputs) != 1:
            raise InputError(f"a pre-event reference needs an S1-only flood model, not {card.name}")
        if same_file(Path(pre_event), Path(sources["S1"])):
            raise InputError("the pre-event raster is the same file as the S1 raster (the event image)")
        pre = open_input(pre_event, card.inputs[0], "pre-event S1")
        stack.callback(pre.close)
        outputs.check_inputs(pre.files)
        check_overlap(pre, grid, "pre-event S1")
        align(pre, grid)
        input_sets.append([pre])
    return inputs, input_sets, grid


def pixel_size_m(grid: Grid) -> float:
    """Mean pixel side in metres at the grid's centre (geographic degrees converted on the ellipsoid)."""
    t = grid.transform
    if grid.crs.is_geographic:
        lat = np.deg2rad(t.f + t.e * grid.height / 2)
        return float(np.sqrt(abs(t.a) * 111320.0 * np.cos(lat) * abs(t.e) * 110574.0))
    unit = grid.crs.linear_units_factor[1] if grid.crs.is_projected else 1.0
    return float(np.sqrt(abs(t.a * t.e)) * unit)


def resolution_notes(grid: Grid, card: ModelCard) -> list[Note]:
    """A warning when pixels are far from the ground resolution the model was trained at."""
    size = pixel_size_m(grid)
    if card.resolution_m and not 0.5 <= size / card.resolution_m <= 2.0:
        return [note_warning(
            f"pixels are about {size:.3g} m but model {card.name} was trained at {card.resolution_m:g} m: "
            "expect a poor map (resample the input to the model's resolution)"
        )]  # fmt: skip
    return []


class ClassSink:
    """Receives blended probabilities strip by strip: writes classes (and probabilities), counts areas."""

    def __init__(self, dst, prob_dst, card: ModelCard, out_classes: list[ClassInfo], geometry,
                 out_transform, crs, width: int, change: bool) -> None:  # fmt: skip
        self.dst, self.prob_dst, self.card, self.out_classes = dst, prob_dst, card, out_classes
        self.out_transform, self.crs, self.width, self.change = out_transform, crs, width, change
        self.inside = None if geometry is None else AOIMask(geometry, out_transform, width, dst.height)
        self.counts = np.zeros(len(out_classes), dtype=np.float64)
        self.nan_pixels = 0
        self.input_pixels = 0
        self.aoi_pixels = 0

    def __call__(self, row0: int, probs: np.ndarray, valid: np.ndarray) -> None:
        n_classes = len(self.card.classes)
        rows, width = probs.shape[1], self.width
        block = Window(0, row0, width, rows)
        if self.inside is not None:
            inside = self.inside.rows(row0, rows)
            self.aoi_pixels += int(inside.sum())
            valid = valid & inside
        finite = np.all(np.isfinite(probs), axis=0)  # a model answering NaN gives no class: nodata, reported
        self.nan_pixels += int((valid & ~finite).sum())
        self.input_pixels += int(valid.sum())
        valid = valid & finite
        if self.change:
            classes = change_classes(class_argmax(probs[:n_classes]), class_argmax(probs[n_classes:]))
            probs = probs[:n_classes]
        else:
            classes = class_argmax(probs)
        classes[~valid] = self.card.output_nodata
        with writing("output", Path(self.dst.name)):
            self.dst.write(classes, 1, window=block)
        if self.prob_dst is not None:
            probs = probs.astype(np.float32, copy=True)
            probs[:, ~valid] = np.nan
            with writing("probabilities", Path(self.prob_dst.name)):
                self.prob_dst.write(probs, window=block)
        self.counts += block_class_areas_km2(
            classes, [c.value for c in self.out_classes], self.crs, self.out_transform, row0
        )


def _run_job(
    task: str,
    sources: dict[str, str | Path | None],
    outputs: OutputSet,
    *,
    card: ModelCard,
    model_path: Path,
    aoi: AOI,
    pre_event: str | Path | None,
    config: Execution,
    progress: Callable[[float], None] | None,
    is_cancelled: Callable[[], bool] | None,
    notes: list[Note],
    min_polygon: int,
) -> JobResult:
    for prefix, path in sources.items():
        if path is not None and card.input_for(prefix) is None:
            notes.append(note_warning(f"{prefix} input ignored: model {card.name} does not use it"))
    out_classes = CHANGE_CLASSES if pre_event is not None else card.classes
    with ExitStack() as stack:
        input_sets, grid, where = _checked_inputs(card, sources, pre_event, aoi, stack, outputs, notes)
        loaded = tiled_job.load(model_path, config)
        tile, overlap, batch_size = _tiling(card, config, loaded.provider, notes)
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=tile_row_cache(input_sets, where.read, tile)))
        # a model reading surroundings classes a small AOI as in the whole scene: only a small raster is
        # then a reason to warn
        if card.context_margin:
            small = small_extent_note(grid.height, grid.width, tile, "the raster")
        else:
            small = small_extent_note(where.height, where.width, tile)
        notes.extend([small] if small else [])
        with ExitStack() as files:
            dst = tiled_job.open_class_raster(files, outputs, grid, where, card)
            prob_dst = _open_probabilities(files, outputs, grid, where, len(card.classes))
            sink = ClassSink(dst, prob_dst, card, out_classes, where.geometry, where.transform, grid.crs,
                             where.width, change=pre_event is not None)  # fmt: skip
            run_tiled(loaded, input_sets, where.read, sink, tile=tile, overlap=overlap,
                      batch_size=batch_size, progress=progress, is_cancelled=is_cancelled,
                      output=where.output_in_read)  # fmt: skip
            _check_answers(sink, card, where, notes)
            _close_rasters(outputs, dst, prob_dst, card, out_classes)
    counts = sink.counts
    _finish_extras(outputs, task, out_classes, card, counts, min_polygon)
    # with a pre-event reference, "flooded" is new water only; permanent water is reported beside it
    flooded = (
        (float(counts[1]) if pre_event is not None else float(counts[1:].sum())) if task == "flood" else None
    )
    planned = {o.label: o.target for o in outputs.outputs}
    return JobResult(
        output=planned["output"], probabilities=planned.get("probabilities"), polygons=planned.get("polygons"),
        statistics=planned.get("statistics"), model_name=card.name, provider=loaded.provider, card=card,
        classes=out_classes, class_area_km2={c.name: float(counts[i]) for i, c in enumerate(out_classes)},
        flooded_km2=flooded, shape=(where.height, where.width), crs=grid.crs.to_string(), notes=notes,
    )  # fmt: skip


def tile_row_cache(input_sets: list[list[InputRaster]], window: Window, tile: int) -> int:
    """GDAL block-cache bytes while tiles are read: the input blocks one tile row touches, plus 16 MiB for
    the output's blocks and the rest. A tile row reads part of a block row and the next tile row the rest;
    a smaller cache evicts a wide scene's blocks in between and decodes each twice (a 25000 px deflate
    scene: 100 MiB a block row), a larger one holds blocks no tile needs again. Memory follows the
    raster's width, not its area; capped at 256 MiB."""
    need = 0
    for raster in (r for s in input_sets for r in s):
        source = raster.reader if raster.reader is not None else raster.dataset
        block_rows = source.block_shapes[0][0]
        rows = block_rows * -(-tile // block_rows)
        need += len(raster.band_indexes) * np.dtype(source.dtypes[0]).itemsize * int(window.width) * rows
    return min(need + 16 * MIB, 256 * MIB)


def _checked_inputs(
    card: ModelCard,
    sources: dict[str, str | Path | None],
    pre_event: str | Path | None,
    aoi: AOI,
    stack: ExitStack,
    outputs: OutputSet,
    notes: list[Note],
) -> tuple[list[list[InputRaster]], Grid, tiled_job.Extent]:
    """Open and align the inputs, find the extent to map, check every input has valid pixels there and
    decide its units and scene level (notes)."""
    _, input_sets, grid = _open_inputs(card, sources, pre_event, stack, outputs)
    notes.extend(resolution_notes(grid, card))
    where = tiled_job.extent(aoi, grid, notes, card.context_margin)
    for raster in [r for s in input_sets for r in s]:
        if not has_valid_pixels(raster, where.window):
            inside = "inside the AOI" if where.geometry is not None else ""
            raise InputError(f"{raster.label} raster {raster.path.name} has no valid pixels {inside}".strip())
        notes.extend(raster.notes)
        # on the window the network reads: a fill value declared nowhere in the AOI's surroundings is then
        # found and left out as the whole map leaves it out, not read as backscatter
        notes.extend(detect_units(raster, where.read))
        # the scene is the raster, not the AOI: a map clipped to an AOI equals the whole map there
        notes.extend(detect_level(raster, Window(0, 0, grid.width, grid.height)))
    return input_sets, grid, where


def _tiling(card: ModelCard, config: Execution, provider: str, notes: list[Note]) -> tuple[int, int, int]:
    """(tile, overlap, batch) of a run: the settings', else the model card's and the provider's."""
    tile = config.tile_for(card.tile_size)
    batch_size = config.batch_for(provider, tile)
    overlap = config.overlap_for(card.overlap)
    log.info("model %s on %s; tile %d, overlap %d, batch %d", card.name, provider, tile, overlap, batch_size)
    for note in notes:
        log.info("%s", note)
    if tile % 16 or not 0 <= overlap < tile // 2:
        raise InputError(f"tile size {tile} must be a multiple of 16 and overlap below half of it")
    return tile, overlap, batch_size


def _open_probabilities(files: ExitStack, outputs: OutputSet, grid: Grid, where: tiled_job.Extent, n: int):
    """The probability raster's temporary when one was asked for, else None."""
    prob_out = next((o for o in outputs.outputs if o.label == "probabilities"), None)
    if prob_out is None:
        return None
    prob_out.verify = verify_raster(where.width, where.height, n)
    profile = probability_profile(grid.crs, where.transform, where.width, where.height, n)
    return files.enter_context(rasterio.open(prob_out.temp, "w", **profile))


def _check_answers(sink: ClassSink, card: ModelCard, where: tiled_job.Extent, notes: list[Note]) -> None:
    if where.geometry is not None and sink.aoi_pixels == 0:
        raise InputError("the AOI covers no pixel centre of the raster (smaller or thinner than a pixel)")
    answers = tiled_job.Answers(sink.input_pixels, sink.nan_pixels, float(sink.counts.sum()))
    answers.check(card, notes, "no output pixel is valid (inputs hold no data inside the AOI)")


def _close_rasters(outputs: OutputSet, dst, prob_dst, card: ModelCard, out_classes: list[ClassInfo]) -> None:
    """Class table and band names written, the temporaries closed (the output set commits them)."""
    with writing("output", outputs.outputs[0].target):
        describe_classes(dst, card, out_classes)
        dst.close()
    if prob_dst is not None:
        prob_out = next(o for o in outputs.outputs if o.label == "probabilities")
        with writing("probabilities", prob_out.target):
            for i, c in enumerate(card.classes, start=1):
                prob_dst.set_band_description(i, f"p({c.name})")
            prob_dst.close()


def _finish_extras(
    outputs: OutputSet,
    task: str,
    out_classes: list[ClassInfo],
    card: ModelCard,
    counts: np.ndarray,
    min_polygon: int,
) -> None:
    """Polygons and statistics, written to their temporaries from the finished class raster's temporary."""
    class_out = outputs.outputs[0]
    for out in outputs.outputs[1:]:
        if out.label == "polygons":
            skip = {0} if task == "flood" else set()
            with writing("polygons", out.target):
                written = write_polygons(class_out.temp, out.temp, out_classes, card.output_nodata, skip,
                                         driver_for=out.target, min_pixels=min_polygon)  # fmt: skip
            out.verify = verify_vector(lambda n=written: n)
        elif out.label == "statistics":
            with writing("statistics", out.target):
                rows = write_statistics(out.temp, out_classes, [float(a) for a in counts], card.name)
            out.verify = verify_table(rows)


def map_floods(
    s1: str | Path,
    out: str | Path,
    *,
    s2: str | Path | None = None,
    **kwargs: Any,
) -> JobResult:
    """Flood map (0 dry, 1 water, 255 nodata) from a Sentinel-1 raster, optionally with Sentinel-2."""
    return run_job("flood", {"S1": s1, "S2": s2}, out, **kwargs)


def land_cover(
    s2: str | Path,
    out: str | Path,
    *,
    s1: str | Path | None = None,
    labels: str | Path | None = None,
    field: str | None = None,
    save_model: str | Path | None = None,
    method: str | None = None,
    **kwargs: Any,
) -> JobResult:
    """Land-cover map from a Sentinel-2 raster, optionally with Sentinel-1: in the classes of the model card,
    or, with `labels`, in the user's own classes (a classifier fitted on them by `method`: models/own_classes.py;
    without labels the method is not used)."""
    if labels is not None:
        from .own_classes import classify_own

        return classify_own(s2, out, s1=s1, labels=labels, field=field, save_model=save_model, method=method,
                            **kwargs)  # fmt: skip
    if save_model is not None:
        raise InputError("saving a classifier needs training labels (polygons or points with a class field)")
    return run_job("land_cover", {"S2": s2, "S1": s1}, out, **kwargs)
