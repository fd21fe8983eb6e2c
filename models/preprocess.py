"""From raw raster values to network input: units, nodata masks and the card's normalisation."""

from __future__ import annotations

import numpy as np

from .card import InputSpec

DB_FLOOR = 1e-5  # linear backscatter floor before log10 (-50 dB)


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


def to_db(linear: np.ndarray) -> np.ndarray:
    """10·log10 of linear backscatter, floored so zeros become -50 dB instead of -inf."""
    return (10.0 * np.log10(np.maximum(linear, DB_FLOOR))).astype(np.float32)


def valid_mask(raw: np.ndarray, nodata: float | None) -> np.ndarray:
    """(H, W) bool: pixels where every band is finite and differs from the dataset nodata value."""
    ok = np.all(np.isfinite(raw), axis=0)
    if nodata is not None and not np.isnan(nodata):
        ok &= np.all(raw != nodata, axis=0)
    return ok


def prepare(raw: np.ndarray, spec: InputSpec, linear: bool = False) -> np.ndarray:
    """(B, H, W) raw values in the card's band order -> normalised float32; invalid pixels become 0.

    `linear` converts S1 linear power to dB first. Callers mask invalid pixels themselves (see valid_mask);
    zero after normalisation is the training-set mean, the least surprising filler for the network.
    """
    x = raw.astype(np.float32, copy=True)
    if linear:
        x = to_db(x)
    if spec.clip is not None:
        np.clip(x, spec.clip[0], spec.clip[1], out=x)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    x = (x - mean) / std
    x[~np.isfinite(x)] = 0.0
    return x
