"""Tile layout and blending weights for overlapping windowed inference."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of size `tile` covering [0, length) with at least `overlap` pixels shared.

    The last tile is pulled back to end exactly at `length`, so no tile reads past the raster.
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def padded_size(length: int, tile: int, multiple: int = 16) -> int:
    """Tile edge used for a raster dimension: `tile`, or the raster length rounded up when it is smaller."""
    if length >= tile:
        return tile
    return int(np.ceil(length / multiple) * multiple)


def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """(H, W) weights that ramp linearly from the tile edge over `overlap` pixels and are 1 inside.

    They never reach zero, so a pixel covered by a single edge tile still gets a prediction; where tiles
    overlap, the sum of weights normalises the blend, so predictions change smoothly and no seam shows.
    """

    def ramp(n: int) -> np.ndarray:
        i = np.arange(n, dtype=np.float32)
        dist = np.minimum(i + 1, n - i)
        return np.minimum(dist / (overlap + 1), 1.0)

    if overlap <= 0:
        return np.ones((height, width), dtype=np.float32)
    return np.outer(ramp(height), ramp(width)).astype(np.float32)
