"""Tiled, batched, windowed inference with overlap blending; memory is bounded by tile × batch × width.

Tiles are processed one tile-row at a time. Their blended class probabilities accumulate in a strip buffer
one tile high; rows that no later tile touches are final and are handed to `sink` straight away.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from .errors import Cancelled
from .preprocess import prepare
from .rasters import InputRaster
from .session import LoadedModel
from .tiling import blend_weights, padded_size, tile_starts

# sink(row0, probabilities (C, rows, W), valid (rows, W)) with row0 relative to the window
Sink = Callable[[int, np.ndarray, np.ndarray], None]
# Rows handed to the sink at once. The finished rows of a tile row (a tile high) would make the division,
# the class argmax and the validity masks each a temporary of the strip's size: on a 25000 px wide scene
# with 512-px tiles about 200 MiB at the peak, for nothing (bench/overhead.py's memory rows).
FLUSH_ROWS = 64


@dataclass
class TileJob:
    """Where a tile sits in the window and the size of its real (unpadded) data."""

    row: int
    col: int
    height: int
    width: int


def _read_tile(inputs: list[InputRaster], window: Window, job: TileJob, th: int, tw: int):
    """Prepared network inputs (padded to th × tw) and the joint validity mask of one tile for one date."""
    read_win = Window(window.col_off + job.col, window.row_off + job.row, job.width, job.height)
    feeds, valid = {}, np.ones((th, tw), dtype=bool)
    for raster in inputs:
        raw, ok = raster.read(read_win)
        x = prepare(raw, raster.spec, linear=raster.linear, shift_db=raster.level_db)
        np.copyto(x, 0.0, where=~ok[None])
        if x.shape[1:] != (th, tw):  # an edge tile of a raster smaller than the tile: pad
            padded = np.zeros((x.shape[0], th, tw), dtype=np.float32)
            padded[:, : job.height, : job.width] = x
            x = padded
            tile_ok = np.zeros((th, tw), dtype=bool)
            tile_ok[: job.height, : job.width] = ok
            ok = tile_ok
        feeds[raster.spec.name] = x
        valid &= ok
    return feeds, valid


def _read_sets(input_sets: list[list[InputRaster]], window: Window, job: TileJob, th: int, tw: int):
    """One tile of every input set (e.g. post- and pre-event): feeds per set, validity joined over sets."""
    feeds, valid = [], np.ones((th, tw), dtype=bool)
    for inputs in input_sets:
        f, ok = _read_tile(inputs, window, job, th, tw)
        feeds.append(f)
        valid &= ok
    return feeds, valid


def _slide(rows: np.ndarray, n: int) -> None:
    """rows[:-n] = rows[n:] in place, n rows at a time from the top: no source row is overwritten before it
    is read, and no temporary of the kept rows is made (after a scene's last, short tile row step that was
    nearly the whole strip: 140 MiB at 25000 px wide with 512-px tiles)."""
    kept = len(rows) - n
    for i in range(0, kept, n):
        k = min(n, kept - i)
        rows[i : i + k] = rows[i + n : i + n + k]


class _Strip:
    """The window rows being blended (one padded tile high): probability and weight sums and validity,
    handed to the sink row block by row block as tiles further down no longer reach them."""

    def __init__(
        self, n_classes: int, th: int, width: int, height: int, weights: np.ndarray, sink: Sink
    ) -> None:
        self.acc = np.zeros((n_classes, th, width), dtype=np.float32)
        self.wsum = np.zeros((th, width), dtype=np.float32)
        self.valid = np.zeros((th, width), dtype=bool)
        self.top = 0  # window row held by acc[:, 0]
        self.height, self.weights, self.sink = height, weights, sink

    def flush(self, until: int) -> None:
        """Hand rows [top, until) to the sink, FLUSH_ROWS at a time, and slide the strip buffer down."""
        acc, wsum, valid = self.acc, self.wsum, self.valid
        n = min(until, self.height) - self.top
        if n <= 0:
            return
        for r in range(0, n, FLUSH_ROWS):
            m = min(FLUSH_ROWS, n - r)
            probs = acc[:, r : r + m] / np.maximum(wsum[r : r + m], 1e-12)
            self.sink(self.top + r, probs, valid[r : r + m].copy())
        for rows in (acc.swapaxes(0, 1), wsum, valid):  # each with the strip's rows first (views)
            _slide(rows, n)
        acc[:, -n:], wsum[-n:], valid[-n:] = 0.0, 0.0, False
        self.top += n

    def add(self, jobs: list[TileJob], per_tile: np.ndarray, oks: list[np.ndarray]) -> None:
        """Add each tile's probabilities (C, th, tw), weighted for blending, into the strip."""
        for job, ok, probs in zip(jobs, oks, per_tile, strict=True):
            if not ok.any():
                continue  # never inferred (see _Tiles.run): its pixels stay nodata and add no weight
            r0, h, w = job.row - self.top, job.height, job.width
            wt = self.weights[:h, :w]
            self.acc[:, r0 : r0 + h, job.col : job.col + w] += probs[:, :h, :w] * wt
            self.wsum[r0 : r0 + h, job.col : job.col + w] += wt
            self.valid[r0 : r0 + h, job.col : job.col + w] |= ok[:h, :w]


@dataclass
class _Tiles:
    """Reading and running batches of tiles of every input set (S sets: S dates of the same place)."""

    model: LoadedModel
    input_sets: list[list[InputRaster]]
    window: Window
    th: int
    tw: int

    @property
    def n_sets(self) -> int:
        return len(self.input_sets)

    def read(self, jobs: list[TileJob]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Feeds stacked set-major (all tiles of set 0, then of set 1, ...) and each tile's validity."""
        tiles = [_read_sets(self.input_sets, self.window, job, self.th, self.tw) for job in jobs]
        names = tiles[0][0][0].keys()
        feeds = {n: np.stack([t[0][k][n] for k in range(self.n_sets) for t in tiles]) for n in names}
        return feeds, [ok for _, ok in tiles]

    def run(self, feeds: dict[str, np.ndarray], oks: list[np.ndarray]) -> np.ndarray:
        """Run only the tiles holding valid data (a GRD scene's nodata borders are about a quarter of it);
        the others get zeros, which _Strip.add skips."""
        keep = [i for i, ok in enumerate(oks) if ok.any()]
        if len(keep) == len(oks):
            return self.model.run(feeds)
        out = np.zeros(
            (self.n_sets * len(oks), len(self.model.card.classes), self.th, self.tw), dtype=np.float32
        )
        if keep:
            rows = [k * len(oks) + i for k in range(self.n_sets) for i in keep]  # feeds are set-major
            out[rows] = self.model.run({n: v[rows] for n, v in feeds.items()})
        return out

    def per_tile(self, out: np.ndarray, n_jobs: int) -> np.ndarray:
        """One batch's output (n_sets * n_jobs, C, th, tw; set-major) as (n_jobs, n_sets * C, th, tw)."""
        per_tile = out.reshape(self.n_sets, n_jobs, *out.shape[1:]).transpose(1, 0, 2, 3, 4)
        return per_tile.reshape(n_jobs, self.n_sets * out.shape[1], *out.shape[2:])


def _cropped(sink: Sink, output: Window) -> Sink:
    """A sink handing `sink` only the rows and columns of `output`, its rows counted from output's top."""
    top, left = int(output.row_off), int(output.col_off)
    bottom, right = top + int(output.height), left + int(output.width)

    def crop(row0: int, probs: np.ndarray, valid: np.ndarray) -> None:
        r0, r1 = max(row0, top), min(row0 + probs.shape[1], bottom)
        if r1 > r0:
            rows = slice(r0 - row0, r1 - row0)
            sink(r0 - top, probs[:, rows, left:right], valid[rows, left:right])

    return crop


def _batches(height: int, width: int, th: int, tw: int, overlap: int, batch_size: int):
    """(row, jobs) of every batch: each tile row split into batches, in raster order."""
    batches = []
    cols = tile_starts(width, tw, overlap)
    for row in tile_starts(height, th, overlap):
        row_jobs = [TileJob(row, col, min(th, height - row), min(tw, width - col)) for col in cols]
        batches.extend((row, row_jobs[i : i + batch_size]) for i in range(0, len(row_jobs), batch_size))
    return batches


def run_tiled(
    model: LoadedModel,
    input_sets: list[list[InputRaster]],
    window: Window,
    sink: Sink,
    tile: int,
    overlap: int,
    batch_size: int,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    output: Window | None = None,
) -> None:
    """Run `model` over `window` of each set of aligned inputs and stream blended probabilities to `sink`.

    With S input sets (S dates of the same place), the sink receives S × C probability bands: set k's
    classes are bands k·C .. k·C + C - 1. All sets of a tile run in one batch. `output`: the part of
    `window` (in its pixels) the sink receives, the rest being surroundings the network only reads.
    """
    if output is not None and (output.width, output.height) != (window.width, window.height):
        sink = _cropped(sink, output)
    height, width = int(window.height), int(window.width)
    th, tw = padded_size(height, tile), padded_size(width, tile)
    tiles = _Tiles(model, input_sets, window, th, tw)
    strip = _Strip(
        len(model.card.classes) * tiles.n_sets, th, width, height, blend_weights(th, tw, overlap), sink
    )
    batches = _batches(height, width, th, tw, overlap, batch_size)
    total = sum(len(jobs) for _, jobs in batches)
    done = 0

    def blend(row: int, jobs: list[TileJob], running, oks: list[np.ndarray]) -> None:
        nonlocal done
        strip.flush(row)
        strip.add(jobs, tiles.per_tile(running.result(), len(jobs)), oks)
        done += len(jobs)
        if progress is not None:
            progress(done / total)

    # Three stages overlap: a reader thread prepares batch i+1 and a runner thread keeps ONNX Runtime
    # busy with batch i while this thread blends batch i-1 and writes finished rows (GDAL, ORT and
    # numpy release the GIL). Only the reader touches the datasets, so they are never used concurrently.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="contrasat-read") as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="contrasat-run") as runner,
    ):
        pending_read = reader.submit(tiles.read, batches[0][1])
        previous = None  # (row, jobs, future of the ORT output, validity)
        for i, (row, jobs) in enumerate(batches):
            feeds, oks = pending_read.result()
            if i + 1 < len(batches):
                pending_read = reader.submit(tiles.read, batches[i + 1][1])
            if is_cancelled is not None and is_cancelled():
                raise Cancelled("cancelled by the user")
            running = (row, jobs, runner.submit(tiles.run, feeds, oks), oks)
            if previous is not None:
                blend(*previous)
            previous = running
        blend(*previous)
    strip.flush(height)
