"""Tile layout and blending weights for overlapping windowed inference."""

from __future__ import annotations

import numpy as np

from .notes import Note, warning


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


def small_extent_note(height: int, width: int, tile: int, what: str = "the area mapped") -> Note | None:
    """A warning for a raster (or area of interest) smaller than one tile: the network then sees no
    surroundings beyond it, so its pixels may be classed otherwise than in the scene it was cut from.
    `what` names the extent measured ("the raster" when the model reads around an AOI)."""
    if height >= tile and width >= tile:
        return None
    return warning(
        f"{what} is only {width} × {height} pixels (columns × rows), smaller than one {tile}-pixel tile: the model sees "
        "nothing around it, so pixels may be classed otherwise than in the whole scene; map a larger "
        "extent with this area as the area of interest"
    )
