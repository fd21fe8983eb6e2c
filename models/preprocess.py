"""From raw raster values to network input: units, nodata masks and the card's normalisation."""

from __future__ import annotations

import numpy as np

from .card import InputSpec

DB_FLOOR = 1e-5  # linear backscatter floor before log10 (-50 dB)
# Sentinel-2 processing baseline 04.00 (from January 2022) stores DN = reflectance x 10000 + 1000.
S2_OFFSET = 1000.0
S2_OFFSET_QUANTILE = 0.01


def looks_linear(values: np.ndarray) -> bool:
    """True when S1 values look like linear power rather than dB.

    dB backscatter over land and water is overwhelmingly negative; linear sigma0 is non-negative and
    mostly below 1. Decided on finite values only.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    negative_share = float(np.mean(finite < 0))
    return negative_share < 0.01 and float(np.median(finite)) < 1.0


def s2_offset(values: np.ndarray) -> float:
    """The additive offset of Sentinel-2 values (B, N) of valid pixels: S2_OFFSET or 0.

    With the offset every valid value is >= 1000, even in the darkest band (B10 cirrus, or water in the
    SWIR bands), whose reflectance is near zero; without it the darkest band's low quantile is far below
    1000. Decided on the darkest band's 1% quantile so a few bright or saturated pixels cannot flip it.
    """
    if values.ndim != 2 or values.shape[1] == 0:
        return 0.0
    low = np.quantile(values.astype(np.float64), S2_OFFSET_QUANTILE, axis=1)
    return S2_OFFSET if float(np.min(low)) >= S2_OFFSET else 0.0


def to_db(linear: np.ndarray) -> np.ndarray:
    """10·log10 of linear backscatter, floored so zeros become -50 dB instead of -inf."""
    return (10.0 * np.log10(np.maximum(linear, DB_FLOOR))).astype(np.float32)


def valid_mask(raw: np.ndarray, nodata: float | None) -> np.ndarray:
    """(H, W) bool: pixels where every band is finite and differs from the dataset nodata value."""
    ok = np.all(np.isfinite(raw), axis=0)
    if nodata is not None and not np.isnan(nodata):
        ok &= np.all(raw != nodata, axis=0)
    return ok


def prepare(raw: np.ndarray, spec: InputSpec, linear: bool = False, shift_db: float = 0.0) -> np.ndarray:
    """(B, H, W) raw values in the card's band order -> normalised float32; invalid pixels become 0.

    `linear` converts S1 linear power to dB first; `shift_db` is the scene's level shift (models/levels.py),
    added in dB before clipping. Callers mask invalid pixels themselves (see valid_mask); zero after
    normalisation is the training-set mean, the least surprising filler for the network.
    """
    x = raw.astype(np.float32, copy=True)
    if linear:
        x = to_db(x)
    if shift_db:
        x += np.float32(shift_db)
    if spec.clip is not None:
        np.clip(x, spec.clip[0], spec.clip[1], out=x)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    x -= mean
    x /= std
    np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return x
