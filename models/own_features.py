"""Per-pixel features of the labelled pixels from feature-extractor models (card task `features`).

The grid is cut into blocks of `BLOCK` pixels; only blocks holding labelled pixels are read (with `CONTEXT`
pixels of surroundings, as a tile of the mapping run would see them) and run through the extractors. The
inputs are read exactly as the mapping run reads them (inference._read_tile: units, nodata, normalisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from .errors import Cancelled, InputError
from .inference import TileJob, _read_tile
from .own_labels import LabelLayer
from .own_pixels import PlacedFeature
from .rasters import Grid, InputRaster
from .session import LoadedModel

BLOCK = 96  # labelled pixels are gathered per block of this side
CONTEXT = 32  # surroundings read around a block (the extractor's receptive field)
PAD_TO = 32  # tile sides are padded to a multiple of this (any encoder depth here accepts it)
MAX_PER_FEATURE = 2000  # pixels kept per polygon for fitting: large polygons must not drown small ones


@dataclass
class LabelledPixels:
    """Grid positions of labelled pixels with their class and feature number (the validation group)."""

    rows: np.ndarray
    cols: np.ndarray
    cls: np.ndarray
    group: np.ndarray

    def subset(self, keep: np.ndarray) -> LabelledPixels:
        return LabelledPixels(self.rows[keep], self.cols[keep], self.cls[keep], self.group[keep])


def gather(placed: list[PlacedFeature], seed: int = 0) -> LabelledPixels:
    """Every labelled pixel once (the first feature claiming it keeps it), at most MAX_PER_FEATURE each."""
    rng = np.random.default_rng(seed)
    parts = []
    for p in placed:
        r, c = p.pixels()
        if len(r) > MAX_PER_FEATURE:
            keep = np.sort(rng.choice(len(r), MAX_PER_FEATURE, replace=False))
            r, c = r[keep], c[keep]
        parts.append((r, c, np.full(len(r), p.cls), np.full(len(r), p.number)))
    rows, cols, cls, group = (np.concatenate(x) for x in zip(*parts, strict=True))
    _, first = np.unique(rows.astype(np.int64) << 32 | cols, return_index=True)
    first.sort()
    return LabelledPixels(rows[first], cols[first], cls[first], group[first])


def _blocks(pixels: LabelledPixels) -> dict[tuple[int, int], np.ndarray]:
    """Indexes of the labelled pixels in each block they fall in."""
    keys = (pixels.rows // BLOCK).astype(np.int64) << 32 | (pixels.cols // BLOCK)
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    bounds = [*starts[1:], len(order)]
    return {
        (int(k >> 32), int(k & 0xFFFFFFFF)): order[s:e] for k, s, e in zip(uniq, starts, bounds, strict=True)
    }


def _read_block(inputs: list[InputRaster], grid: Grid, block: tuple[int, int]):
    """The block with its context: (feeds, validity, row0, col0) on the grid."""
    row0 = max(block[0] * BLOCK - CONTEXT, 0)
    col0 = max(block[1] * BLOCK - CONTEXT, 0)
    h = min((block[0] + 1) * BLOCK + CONTEXT, grid.height) - row0
    w = min((block[1] + 1) * BLOCK + CONTEXT, grid.width) - col0
    whole = Window(0, 0, grid.width, grid.height)
    th, tw = (-(-n // PAD_TO) * PAD_TO for n in (h, w))
    feeds, valid = _read_tile(inputs, whole, TileJob(row0, col0, h, w), th, tw)
    return feeds, valid, row0, col0


def keep_valid(
    inputs: list[InputRaster], grid: Grid, pixels: LabelledPixels, layer: LabelLayer
) -> LabelledPixels:
    """The labelled pixels with valid input data; refuses a class left with none (e.g. labels on nodata)."""
    ok = np.zeros(len(pixels.rows), dtype=bool)
    for block, idx in _blocks(pixels).items():
        _, valid, row0, col0 = _read_block(inputs, grid, block)
        ok[idx] = valid[pixels.rows[idx] - row0, pixels.cols[idx] - col0]
    kept = pixels.subset(ok)
    empty = [c.name for c in layer.classes if not np.any(kept.cls == c.value)]
    if empty:
        raise InputError(
            f"class {', '.join(repr(n) for n in empty)} of {layer.path.name} has labelled pixels only where "
            "the raster holds no data"
        )
    return kept


def extract(
    extractors: list[LoadedModel],
    inputs: list[InputRaster],
    grid: Grid,
    pixels: LabelledPixels,
    is_cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(n, D) float32 features of the labelled pixels: every extractor's channels, concatenated in order."""
    features: np.ndarray | None = None
    for block, idx in _blocks(pixels).items():
        if is_cancelled is not None and is_cancelled():
            raise Cancelled("cancelled by the user")
        feeds, _, row0, col0 = _read_block(inputs, grid, block)
        out = np.concatenate([run_extractor(m, feeds) for m in extractors], axis=1)[0]
        if features is None:
            features = np.empty((len(pixels.rows), out.shape[0]), dtype=np.float32)
        features[idx] = out[:, pixels.rows[idx] - row0, pixels.cols[idx] - col0].T
    assert features is not None  # gather() never returns an empty set (place_labels refuses it)
    return features


def run_extractor(model: LoadedModel, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """(1, D, H, W) features of one tile (feeds keyed by card input name, (C, H, W) each)."""
    return model.run({s.name: feeds[s.name][None] for s in model.card.inputs})
