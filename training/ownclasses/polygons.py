"""The simulated analyst: compact square polygons inside class interiors, and the buffered test pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Square:
    cls: int
    row: int  # top-left pixel
    col: int
    side: int

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        m = np.zeros(shape, dtype=bool)
        m[self.row : self.row + self.side, self.col : self.col + self.side] = True
        return m


def _fits(allowed: np.ndarray, side: int, margin: int) -> np.ndarray:
    """Centres where a side x side square plus `margin` pixels around it lie wholly in `allowed`."""
    size = side + 2 * margin
    return ndimage.binary_erosion(allowed, structure=np.ones((size, size), bool), border_value=0)


def drawable_classes(label: np.ndarray, side: int, margin: int) -> list[int]:
    """Classes (label > 0) with room for at least one square of `side` in their interior."""
    return [int(c) for c in np.unique(label[label > 0]) if _fits(label == c, side, margin).any()]


def draw_squares(
    label: np.ndarray,
    classes: list[int],
    k: int,
    sides: list[int],
    margin: int,
    gap: int,
    rng: np.random.Generator,
) -> list[Square]:
    """Up to k squares per class, classes taking turns so none crowds the others out.

    Each square's side is drawn from `sides` (a smaller one is tried when it does not fit); the square plus
    `margin` pixels around it are all of its class, and squares keep `gap` pixels from each other. A class
    with no room left gets fewer than k.
    """
    blocked = np.zeros(label.shape, dtype=bool)
    squares: list[Square] = []
    full = set()
    for _ in range(k):
        for c in classes:
            if c in full:
                continue
            first = int(rng.choice(sides))
            for side in [first, *sorted((s for s in sides if s < first), reverse=True)]:
                centres = np.argwhere(_fits((label == c) & ~blocked, side, margin))
                if len(centres):
                    r, q = centres[int(rng.integers(len(centres)))]
                    sq = Square(c, int(r) - side // 2, int(q) - side // 2, side)
                    squares.append(sq)
                    lo_r, lo_c = max(sq.row - gap, 0), max(sq.col - gap, 0)
                    blocked[lo_r : sq.row + side + gap, lo_c : sq.col + side + gap] = True
                    break
            else:
                full.add(c)
    return squares


def train_mask(squares: list[Square], shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    for sq in squares:
        m |= sq.mask(shape)
    return m


def held_out_mask(label: np.ndarray, classes: list[int], squares: list[Square], buffer: int) -> np.ndarray:
    """Labelled pixels of the drawn classes farther than `buffer` pixels (Chebyshev) from every square."""
    near = train_mask(squares, label.shape)
    if buffer:
        near = ndimage.binary_dilation(near, structure=np.ones((2 * buffer + 1,) * 2, bool))
    return np.isin(label, classes) & ~near
