"""Data splits the kits share: leave-one-(group)-out folds over named samples, and spatial blocks of a raster.

Held-out data is chosen before training and never steers it (no early stopping on a test fold).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2


def leave_one_out(
    names: Iterable[str], groups: Mapping[str, str] | None = None, held_out: Iterable[str] | None = None
) -> list[tuple[str, list[str], list[str]]]:
    """Folds as (held-out group, test names, training names), one per group in first-seen order.

    Without `groups` every name is its own group (leave-one-chip-out); with it, e.g. name -> region, every
    sample of the held-out group leaves training (leave-one-region-out). `held_out` picks and orders the
    groups to run; training always uses every other group, so a partial run's folds equal a full run's.
    """
    names = list(names)
    group_of = {n: (groups[n] if groups is not None else n) for n in names}
    order = list(dict.fromkeys(group_of.values()))
    if held_out is not None:
        wanted = list(held_out)
        unknown = [g for g in wanted if g not in order]
        if unknown:
            raise ValueError(f"unknown fold(s) {', '.join(unknown)}; available: {', '.join(order)}")
        order = wanted
    return [
        (g, [n for n in names if group_of[n] == g], [n for n in names if group_of[n] != g]) for g in order
    ]


def spatial_blocks(
    height: int, width: int, block: int, val: Iterable[tuple[int, int]], test: Iterable[tuple[int, int]]
) -> np.ndarray:
    """(H, W) int: TRAIN, VAL or TEST per pixel from (block row, block col) lists of `block`-pixel squares.

    Remainder rows and columns (e.g. 101 = 4 x 25 + 1) join the last block, so edge pixels never form a
    sliver block of their own.
    """
    rows = np.minimum(np.arange(height) // block, max(height // block, 1) - 1)
    cols = np.minimum(np.arange(width) // block, max(width // block, 1) - 1)
    split = np.full((height, width), TRAIN, dtype=np.int64)
    for code, blocks in ((VAL, val), (TEST, test)):
        for r, c in blocks:
            split[np.ix_(rows == r, cols == c)] = code
    return split
