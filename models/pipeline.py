"""The jobs: map floods and land cover from input rasters to finished, georeferenced outputs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .aoi import AOI, aoi_mask, aoi_window, load_aoi
from .card import ClassInfo, ModelCard, read_card
from .errors import InputError
from .inference import run_tiled
from .outputs import (
    atomic_path,
    check_writable,
    class_areas_km2,
    class_profile,
    describe_classes,
    probability_profile,
    row_pixel_area_km2,
    write_polygons,
    write_statistics,
)
from .rasters import (
    InputRaster,
    align,
    check_overlap,
    detect_units,
    has_valid_pixels,
    open_input,
    reference_grid,
)
from .registry import resolve_model
from .session import batch_for, load_model


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


@dataclass
class RunConfig:
    """Execution settings; None means 'use the model card's value'."""

    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    provider: str = "auto"  # 'auto' (CUDA when usable), 'cuda' or 'cpu'
    threads: int = 0  # ONNX Runtime intra-op threads; 0 = its default
    device_id: int = 0  # the GPU CUDA runs on; batch_size 0 = chosen for the provider (session.batch_for)


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
    config: RunConfig | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> JobResult:
    """Run the model of `task` on `sources` ({'S1': path, 'S2': path}) and write the outputs atomically.

    `pre_event` (flood only): an S1 raster of the same place before the event; the model runs on both
    dates and the output separates new flood water from permanent water (CHANGE_CLASSES).
    """
    config = config or RunConfig()
    # GDAL's block cache would otherwise grow with the raster (default: 5% of RAM); windowed reading
    # and strip-wise writing need only a few tiles of it.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        return _run_job(task, sources, out, aoi=aoi, pre_event=pre_event, model=model,
                        probabilities=probabilities, polygons=polygons, statistics=statistics,
                        config=config, progress=progress, is_cancelled=is_cancelled)  # fmt: skip


def _run_job(
    task: str,
    sources: dict[str, str | Path | None],
    out: str | Path,
    *,
    aoi: AOI,
    pre_event: str | Path | None,
    model: str | Path | None,
    probabilities: str | Path | None,
    polygons: str | Path | None,
    statistics: str | Path | None,
    config: RunConfig,
    progress: Callable[[float], None] | None,
    is_cancelled: Callable[[], bool] | None,
) -> JobResult:
    model_path = resolve_model(model, task)
    card = read_card(model_path)
    if card.task != task:
        raise InputError(f"model {card.name} is a '{card.task}' model, not a '{task}' model")
    out = check_writable(out)
    for extra, label in (
        (probabilities, "probabilities"),
        (polygons, "polygons"),
        (statistics, "statistics"),
    ):
        if extra is not None:
            check_writable(extra, label)
    notes = []
    for prefix, path in sources.items():
        if path is not None and card.input_for(prefix) is None:
            notes.append(f"{prefix} input ignored: model {card.name} does not use it")

    with ExitStack() as stack:
        inputs: list[InputRaster] = []
        for spec in card.inputs:
            prefix = spec.sensor[:2]
            path = sources.get(prefix)
            if path is None:
                raise InputError(f"model {card.name} needs a {prefix} raster ({'/'.join(spec.bands)})")
            raster = open_input(path, spec, prefix)
            stack.callback(raster.close)
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
            if task != "flood" or card.input_for("S1") is None or len(card.inputs) != 1:
                raise InputError(f"a pre-event reference needs an S1-only flood model, not {card.name}")
            pre = open_input(pre_event, card.inputs[0], "pre-event S1")
            stack.callback(pre.close)
            check_overlap(pre, grid, "pre-event S1")
            align(pre, grid)
            input_sets.append([pre])

        geometry = load_aoi(aoi, grid.crs)
        if geometry is not None:
            window = aoi_window(geometry, grid.transform, grid.width, grid.height)
        else:
            window = Window(0, 0, grid.width, grid.height)
        for raster in inputs:
            if not has_valid_pixels(raster, window):
                where = "inside the AOI" if geometry is not None else ""
                raise InputError(
                    f"{raster.spec.sensor[:2]} raster {raster.path.name} has no valid pixels {where}".strip()
                )
            detect_units(raster, window)
            if raster.linear:
                notes.append(f"{raster.path.name}: linear backscatter detected, converted to dB")
            if raster.offset:
                notes.append(f"{raster.path.name}: +{raster.offset:g} L1C offset detected and removed")

        loaded = load_model(
            model_path, provider=config.provider, threads=config.threads, device_id=config.device_id
        )
        if loaded.fallback:
            notes.append(loaded.fallback)
        batch_size = config.batch_size or batch_for(loaded.provider)
        tile = config.tile_size or card.tile_size
        overlap = card.overlap if config.overlap is None else config.overlap
        if tile % 16 or not 0 <= overlap < tile // 2:
            raise InputError(f"tile size {tile} must be a multiple of 16 and overlap below half of it")
        out_transform = window_transform(window, grid.transform)
        height, width = int(window.height), int(window.width)
        n_classes = len(card.classes)
        out_classes = CHANGE_CLASSES if pre_event is not None else card.classes
        counts = np.zeros(len(out_classes), dtype=np.float64)

        with ExitStack() as files:
            class_tmp = files.enter_context(atomic_path(out))
            dst = files.enter_context(
                rasterio.open(
                    class_tmp,
                    "w",
                    **class_profile(grid.crs, out_transform, width, height, card.output_nodata),
                )  # fmt: skip
            )
            prob_dst = None
            if probabilities is not None:
                prob_tmp = files.enter_context(atomic_path(probabilities))
                prob_dst = files.enter_context(
                    rasterio.open(
                        prob_tmp,
                        "w",
                        **probability_profile(grid.crs, out_transform, width, height, n_classes),
                    )
                )

            def sink(row0: int, probs: np.ndarray, valid: np.ndarray) -> None:
                rows = probs.shape[1]
                block = Window(0, row0, width, rows)
                if geometry is not None:
                    valid = valid & aoi_mask(geometry, window_transform(block, out_transform), (rows, width))
                if pre_event is not None:
                    classes = change_classes(class_argmax(probs[:n_classes]), class_argmax(probs[n_classes:]))
                    probs = probs[:n_classes]
                else:
                    classes = class_argmax(probs)
                classes[~valid] = card.output_nodata
                dst.write(classes, 1, window=block)
                if prob_dst is not None:
                    probs = probs.astype(np.float32, copy=True)
                    probs[:, ~valid] = np.nan
                    prob_dst.write(probs, window=block)
                areas = row_pixel_area_km2(grid.crs, out_transform, row0, rows)
                counts[:] += class_areas_km2(classes, [c.value for c in out_classes], areas)

            run_tiled(
                loaded, input_sets, window, sink, tile=tile, overlap=overlap, batch_size=batch_size,
                progress=progress, is_cancelled=is_cancelled,
            )  # fmt: skip
            if counts.sum() == 0:
                raise InputError("no output pixel is valid (inputs hold no data inside the AOI)")
            describe_classes(dst, card, out_classes)
            dst.close()
            if prob_dst is not None:
                for i, c in enumerate(card.classes, start=1):
                    prob_dst.set_band_description(i, f"p({c.name})")
                prob_dst.close()

    polygon_path = None
    if polygons is not None:
        skip = {0} if task == "flood" else set()
        write_polygons(out, polygons, out_classes, card.output_nodata, skip)
        polygon_path = Path(polygons)
    areas = {c.name: float(counts[i]) for i, c in enumerate(out_classes)}
    if statistics is not None:
        write_statistics(statistics, out_classes, [float(a) for a in counts], card.name)
    # with a pre-event reference, "flooded" is new water only; permanent water is reported beside it
    flooded = (
        (float(counts[1]) if pre_event is not None else float(counts[1:].sum())) if task == "flood" else None
    )
    return JobResult(
        output=out, probabilities=Path(probabilities) if probabilities else None, polygons=polygon_path,
        statistics=Path(statistics) if statistics else None,
        model_name=card.name, provider=loaded.provider, card=card, classes=out_classes, class_area_km2=areas,
        flooded_km2=flooded, shape=(height, width), crs=grid.crs.to_string(), notes=notes,
    )  # fmt: skip


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
    **kwargs: Any,
) -> JobResult:
    """Land-cover map (classes of the model card) from a Sentinel-2 raster, optionally with Sentinel-1."""
    return run_job("land_cover", {"S2": s2, "S1": s1}, out, **kwargs)
