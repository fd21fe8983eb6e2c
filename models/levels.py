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

from dataclasses import dataclass
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
# How sure the runtime is of a scene's level (measured on crops of the nine Sen1Floods11 chips,
# docs/results/flood.md): a lone peak far below the reference may be open water as well as dark land,
# and a peak that moves when the raster is resampled by parts is not a property of the scene.
DOUBT_LONE_RAISE_DB = (
    1.5  # a lone peak this much darker than the reference may be water: shifted, with a warning
)
MAX_LONE_RAISE_DB = (
    3.0  # ... and beyond the +-3 dB calibration error the model is built for, it is not shifted
)
SPREAD_PARTS, SPREAD_DRAWS = 16, 16  # the values cut into row bands, drawn with replacement
MAX_SPREAD_DB = 0.5  # peak moving more than this between draws: uncertain (0.5 dB flips ~2 % of a map)


@dataclass(frozen=True)
class Level:
    """A scene's level: the shift to apply, and why it cannot be trusted (None: trusted).

    `kind` is 'small' (too few pixels), 'no_peak' (no dry-land peak in the window), 'lone_dark' (a single
    peak so dark it is more likely water: not shifted), 'lone_raised' (a single dark peak taken as land
    under a calibration offset, shifted) or 'unstable' (the peak moves by more than MAX_SPREAD_DB between parts
    of the scene); `spread_db` is that movement."""

    shift: float
    kind: str | None = None
    spread_db: float = 0.0
    peak_db: float | None = None  # where the dry-land peak was found, when one was


def _bins(reference_db: float, bound_db: float) -> tuple[np.ndarray, np.ndarray]:
    """(centres, edges) of the histogram: from WATER_BELOW_DB under the window to SMOOTH_DB above it."""
    below = int(round((bound_db + WATER_BELOW_DB) / BIN_DB))
    above = int(round((bound_db + SMOOTH_DB) / BIN_DB))
    centres = reference_db + BIN_DB * np.arange(-below, above + 1)
    return centres, np.append(centres - BIN_DB / 2, centres[-1] + BIN_DB / 2)


def _bin_index(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value's bin (-1 outside), exactly as np.histogram(v, edges) counts them (the last bin holds its
    right edge). One searchsorted over the edges instead of np.histogram's sort of the values: the level
    is looked at 1 + SPREAD_DRAWS times, and sorting was all of its cost (~45 ms a run)."""
    index = np.searchsorted(edges, v, side="right") - 1
    index[v == edges[-1]] = len(edges) - 2
    index[index >= len(edges) - 1] = -1
    return index


def _counts(index: np.ndarray, n_bins: int) -> np.ndarray:
    return np.bincount(index[index >= 0], minlength=n_bins)


def _peak(
    hist: np.ndarray, centres: np.ndarray, reference_db: float, bound_db: float
) -> tuple[float | None, bool]:
    """(shift, lone): the shift of the dry-land peak of a histogram over `centres` (None: no peak), and
    whether it was a lone peak (the highest point, with no brighter land peak beside a water peak)."""
    k = int(round(SMOOTH_DB / BIN_DB)) | 1
    smooth = np.convolve(hist, np.ones(k) / k, mode="same")
    inside = np.flatnonzero(np.abs(centres - reference_db) <= bound_db + 1e-9)
    margin = int(round(EDGE_DB / BIN_DB))
    lo, hi = inside[0] + margin, inside[-1] - margin  # interior of the window
    top = int(np.argmax(smooth[: inside[-1] + 1]))  # highest point up to the window's top
    if top > hi or smooth[top] <= 0:  # at the window's upper edge: a peak above it, left alone
        return None, False
    land = [
        i
        for i in range(max(lo, top + 1), hi + 1)
        if smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1]
        and smooth[i] >= PEAK_SHARE * smooth[top] and centres[i] - centres[top] >= WATER_GAP_DB
        and smooth[top : i + 1].min() <= VALLEY_SHARE * smooth[i]  # a peak of its own, not a bump on a flank
    ]  # fmt: skip
    if land:
        return float(reference_db - centres[max(land, key=lambda i: centres[i])]), False
    if top < lo:  # highest below the window's interior: open water or frozen ground, left alone
        return None, False
    return float(reference_db - centres[top]), True


def estimate_level(values_db: np.ndarray, reference_db: float, bound_db: float) -> Level:
    """The shift of level_shift() with how far it can be trusted (see Level); a lone peak that may be
    water ('lone_dark') is not applied at run time. The row bands of the
    values (in storage order, so bands of the raster) are drawn with replacement SPREAD_DRAWS times with a
    fixed seed: the answer depends only on the values."""
    v = np.asarray(values_db, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < MIN_PIXELS:
        return Level(0.0, "small")
    centres, edges = _bins(reference_db, bound_db)
    index = _bin_index(v, edges)
    # the histogram of row bands drawn with replacement is the sum of the bands' histograms
    parts = np.stack([_counts(i, len(centres)) for i in np.array_split(index, SPREAD_PARTS)])
    shift, lone = _peak(parts.sum(axis=0), centres, reference_db, bound_db)
    if shift is None:
        return Level(0.0, "no_peak")
    if lone and shift > MAX_LONE_RAISE_DB + 1e-9:
        return Level(0.0, "lone_dark", peak_db=reference_db - shift)
    if lone and shift > DOUBT_LONE_RAISE_DB:
        return Level(shift, "lone_raised", peak_db=reference_db - shift)
    draws = np.random.default_rng(0).integers(0, SPREAD_PARTS, size=(SPREAD_DRAWS, SPREAD_PARTS))
    shifts = [_peak(parts[d].sum(axis=0), centres, reference_db, bound_db)[0] or 0.0 for d in draws]
    spread = float(max(shifts) - min(shifts))
    return Level(shift, "unstable" if spread > MAX_SPREAD_DB else None, spread, reference_db - shift)


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
    centres, edges = _bins(reference_db, bound_db)
    return _peak(_counts(_bin_index(v, edges), len(centres)), centres, reference_db, bound_db)[0] or 0.0


def scene_shift(values_db: np.ndarray, bands: list[str], level: dict[str, Any] | None) -> float:
    """The shift a card's `level` rule ({"band", "reference_db", "bound_db"}) gives a scene's values
    (B, ...) in card band order and dB; 0.0 without a rule."""
    if not level:
        return 0.0
    band = values_db[bands.index(level["band"])]
    return level_shift(band, float(level["reference_db"]), float(level["bound_db"]))


def scene_level(values_db: np.ndarray, bands: list[str], level: dict[str, Any]) -> Level:
    """estimate_level() of the rule's band of a scene's values (B, ...) in card band order and dB."""
    band = values_db[bands.index(level["band"])]
    return estimate_level(band, float(level["reference_db"]), float(level["bound_db"]))


def prepare_scene(values_db: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One whole scene (B, H, W) in dB, normalised as the runtime does a raster of that extent: its level
    shift (when the card has a rule) found on all its finite pixels, then prepare(). For stress tests and
    evaluation code that hold scenes as arrays rather than files."""
    return prepare(values_db, spec, shift_db=scene_shift(values_db, list(spec.bands), spec.level))
