"""The simulated analyst: squares inside class interiors, apart from each other, and the test buffer."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.training.ownclasses.polygons import (
    draw_squares,
    drawable_classes,
    held_out_mask,
    train_mask,
)


@pytest.fixture()
def label() -> np.ndarray:
    """Three big classes in irregular blobs, a thin class (one pixel wide) and no-data stripes."""
    lab = np.ones((80, 80), dtype=np.int64)
    yy, xx = np.mgrid[:80, :80]
    lab[(yy - 20) ** 2 + (xx - 55) ** 2 < 18**2] = 2
    lab[yy > 52] = 3
    lab[:, 30] = 4  # a road: no interior
    lab[:2] = 0
    return lab


def test_thin_class_is_not_drawable(label):
    assert drawable_classes(label, 5, 1) == [1, 2, 3]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_squares_are_compact_inside_interiors_and_apart(label, k):
    classes = drawable_classes(label, 5, 1)
    squares = draw_squares(label, classes, k, [5, 7, 9], margin=1, gap=2, rng=np.random.default_rng(k))
    for c in classes:
        assert 1 <= sum(sq.cls == c for sq in squares) <= k
    for sq in squares:
        assert sq.side in (5, 7, 9)
        r0, c0 = sq.row - 1, sq.col - 1  # the square plus its margin is all one class
        assert r0 >= 0 and c0 >= 0
        assert np.all(label[r0 : sq.row + sq.side + 1, c0 : sq.col + sq.side + 1] == sq.cls)
    for i, a in enumerate(squares):  # no two squares touch: `gap` pixels between them at least
        grown = np.zeros(label.shape, bool)
        grown[max(a.row - 2, 0) : a.row + a.side + 2, max(a.col - 2, 0) : a.col + a.side + 2] = True
        for b in squares[i + 1 :]:
            assert not np.any(grown & b.mask(label.shape))


def test_more_polygons_per_class_when_k_grows(label):
    classes = drawable_classes(label, 5, 1)
    few = draw_squares(label, classes, 1, [5], 1, 2, np.random.default_rng(0))
    many = draw_squares(label, classes, 5, [5], 1, 2, np.random.default_rng(0))
    assert len(few) == 3 and len(many) == 15


def test_test_pixels_keep_the_buffer(label):
    classes = drawable_classes(label, 5, 1)
    squares = draw_squares(label, classes, 3, [5, 7], 1, 2, np.random.default_rng(4))
    test = held_out_mask(label, classes, squares, buffer=4)
    rows, cols = np.nonzero(train_mask(squares, label.shape))
    yy, xx = np.mgrid[: label.shape[0], : label.shape[1]]
    cheb = np.full(label.shape, np.inf)
    for r, c in zip(rows, cols, strict=True):  # brute-force Chebyshev distance to the nearest polygon pixel
        cheb = np.minimum(cheb, np.maximum(abs(yy - r), abs(xx - c)))
    expected = np.isin(label, classes) & (cheb > 4)
    np.testing.assert_array_equal(test, expected)
    assert not test[label == 4].any() and not test[label == 0].any()  # undrawn class and no data left out
