"""Scene level alignment: one dB shift per scene that puts the dry-land peak of a band where training saw it.

A calibration or gain error of a few dB moves every pixel across a water threshold learned in dB (stress set
(c) of docs/results/flood.md: a common -3 dB offset costs VH < -20 dB 0.15 IoU). The dry-land peak of VH is
a level the scene carries with it: found as the highest point of the smoothed histogram inside a window of
+-`bound_db` around the reference, the shift brings it back. The search is bounded so that a scene with no
dry land (a whole-water tile, frozen ground far below the window) has its maximum at the window's edge and
is left as it is: alignment never turns water into land. Computed once per scene, never per tile, so the
map does not depend on where tiles fall.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .card import InputSpec
from .preprocess import prepare

BIN_DB = 0.25  # histogram bins on a grid anchored at the reference: an exact dB offset moves the peak exactly
SMOOTH_DB = 1.5  # box smoothing of the histogram (speckle makes single bins noisy)
EDGE_DB = 0.5  # a maximum this close to the window's edge is the flank of a peak outside it: no shift
MIN_PIXELS = 1000
PEAK_SHARE = 0.2  # a land peak beside a larger water peak is at least this high relative to it
WATER_BELOW_DB = 12.0  # how far under the window the histogram is read to see an open-water peak
WATER_GAP_DB = 6.0
VALLEY_SHARE = 0.6  # between water and land the histogram drops to at most this share of the land peak  # open water lies about 10 dB below dry land in VH; land covers differ by less than 6


def level_shift(values_db: np.ndarray, reference_db: float, bound_db: float) -> float:
    """dB to add to every band of a scene so the dry-land peak of `values_db` (one band, any shape; NaN
    ignored) sits at `reference_db`; 0.0 when there is no dry-land peak within +-`bound_db` of it.

    The histogram is looked at from WATER_BELOW_DB under the window to the window's top. Its highest point
    is the dry-land peak when it lies inside the window, unless a peak at least PEAK_SHARE as high lies
    WATER_GAP_DB or more above it: then the highest point was open water (a scene with more water than
    land, perhaps raised into the window by a gain error) and the brightest such peak is the land. The same
    holds when the highest point lies below the window; without such a peak the scene is left alone."""
    v = np.asarray(values_db, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < MIN_PIXELS:
        return 0.0
    below = int(round((bound_db + WATER_BELOW_DB) / BIN_DB))
    above = int(round((bound_db + SMOOTH_DB) / BIN_DB))
    centres = reference_db + BIN_DB * np.arange(-below, above + 1)
    hist, _ = np.histogram(v, np.append(centres - BIN_DB / 2, centres[-1] + BIN_DB / 2))
    k = int(round(SMOOTH_DB / BIN_DB)) | 1
    smooth = np.convolve(hist, np.ones(k) / k, mode="same")
    inside = np.flatnonzero(np.abs(centres - reference_db) <= bound_db + 1e-9)
    margin = int(round(EDGE_DB / BIN_DB))
    lo, hi = inside[0] + margin, inside[-1] - margin  # interior of the window
    top = int(np.argmax(smooth[: inside[-1] + 1]))  # highest point up to the window's top
    if top > hi or smooth[top] <= 0:  # at the window's upper edge: a peak above it, left alone
        return 0.0
    land = [
        i
        for i in range(max(lo, top + 1), hi + 1)
        if smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1]
        and smooth[i] >= PEAK_SHARE * smooth[top] and centres[i] - centres[top] >= WATER_GAP_DB
        and smooth[top : i + 1].min() <= VALLEY_SHARE * smooth[i]  # a peak of its own, not a bump on a flank
    ]  # fmt: skip
    if land:
        return float(reference_db - centres[max(land, key=lambda i: centres[i])])
    if top < lo:  # highest below the window's interior: open water or frozen ground, left alone
        return 0.0
    return float(reference_db - centres[top])


def scene_shift(values_db: np.ndarray, bands: list[str], level: dict[str, Any] | None) -> float:
    """The shift a card's `level` rule ({"band", "reference_db", "bound_db"}) gives a scene's values
    (B, ...) in card band order and dB; 0.0 without a rule."""
    if not level:
        return 0.0
    band = values_db[bands.index(level["band"])]
    return level_shift(band, float(level["reference_db"]), float(level["bound_db"]))


def prepare_scene(values_db: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One whole scene (B, H, W) in dB, normalised as the runtime does a raster of that extent: its level
    shift (when the card has a rule) found on all its finite pixels, then prepare(). For stress tests and
    evaluation code that hold scenes as arrays rather than files."""
    return prepare(values_db, spec, shift_db=scene_shift(values_db, list(spec.bands), spec.level))
