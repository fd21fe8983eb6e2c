"""Vegetation indices from Sentinel-2 bands, validity masks, and the gap-filling rule for index series.

Bands: blue B02, red B04, NIR B08, stored as reflectance × 10000. Processing baseline 04.00 (from January
2022) adds +1000 to L1C/L2A digital numbers; it is removed only when asked (`offset=1000`) or when the data
shows it (`offset='auto'`: the 1st percentile of the darkest band's valid pixels is >= 1000, which real
surface reflectance of a blue band never reaches without the offset, water and shadow being far darker).

Gap filling (stated once, used by training and runtime alike): per pixel, invalid dates are replaced by
linear interpolation in time between the nearest valid dates before and after; before the first valid date
and after the last one the nearest valid value is held. A pixel without any valid date stays NaN.
"""

from __future__ import annotations

import numpy as np

from .preprocess import s2_offset

INDEX_BANDS: dict[str, tuple[str, ...]] = {
    "NDVI": ("B04", "B08"),
    "EVI": ("B02", "B04", "B08"),
    "SAVI": ("B04", "B08"),
}
SCALE = 10000.0


def detect_offset(dark_band: np.ndarray, valid: np.ndarray | None = None) -> float:
    """1000 when the darkest band's 1st percentile over valid pixels is >= 1000 (baseline >= 04.00), else 0."""
    values = dark_band[valid] if valid is not None else dark_band.ravel()
    values = values[np.isfinite(values) & (values > 0)]  # 0 is Sentinel-2 nodata
    return s2_offset(values[None, :])


def to_reflectance(dn: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Digital numbers (× 10000, maybe with the +1000 offset) -> reflectance in [0, 1] as float32."""
    return ((dn.astype(np.float32) - np.float32(offset)) / np.float32(SCALE)).astype(np.float32)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out.astype(np.float32)


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR - Red) / (NIR + Red) on reflectance; NaN where undefined."""
    return _ratio(nir - red, nir + red)


def evi(blue: np.ndarray, red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """2.5 (NIR - Red) / (NIR + 6 Red - 7.5 Blue + 1) on reflectance in [0, 1]; NaN where undefined."""
    return _ratio(2.5 * (nir - red), nir + 6.0 * red - 7.5 * blue + 1.0)


def savi(red: np.ndarray, nir: np.ndarray, soil: float = 0.5) -> np.ndarray:
    """(1 + L)(NIR - Red) / (NIR + Red + L) with L = 0.5 on reflectance; NaN where undefined."""
    return _ratio((1.0 + soil) * (nir - red), nir + red + soil)


def compute_index(name: str, bands: dict[str, np.ndarray]) -> np.ndarray:
    """Index `name` ('NDVI', 'EVI', 'SAVI') from reflectance arrays keyed by band name (B02, B04, B08)."""
    key = name.upper()
    if key == "NDVI":
        return ndvi(bands["B04"], bands["B08"])
    if key == "EVI":
        return evi(bands["B02"], bands["B04"], bands["B08"])
    if key == "SAVI":
        return savi(bands["B04"], bands["B08"])
    raise ValueError(f"unknown index '{name}' (known: {', '.join(INDEX_BANDS)})")


def fill_gaps(
    series: np.ndarray, valid: np.ndarray | None = None, times: np.ndarray | None = None
) -> np.ndarray:
    """Gap-fill (..., T) series over invalid dates: linear in time between valid neighbours, ends held.

    `valid` (..., T) bool defaults to finite values; `times` (T,) in any unit defaults to 0..T-1.
    Vectorised: the previous/next valid index of every date comes from running max/min, no per-pixel loop.
    """
    x = np.asarray(series, dtype=np.float32)
    ok = np.isfinite(x) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(x))
    t = x.shape[-1]
    tt = np.arange(t, dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
    idx = np.arange(t)
    prev = np.where(ok, idx, -1)
    np.maximum.accumulate(prev, axis=-1, out=prev)
    nxt = np.where(ok, idx, t)
    nxt = np.flip(np.minimum.accumulate(np.flip(nxt, -1), axis=-1), -1)
    has_prev, has_next = prev >= 0, nxt < t
    p = np.clip(prev, 0, t - 1)
    n = np.clip(nxt, 0, t - 1)
    xp = np.take_along_axis(x, p, axis=-1)
    xn = np.take_along_axis(x, n, axis=-1)
    tp, tn = tt[p], tt[n]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(tn > tp, (tt - tp) / (tn - tp), 0.0)
    out = np.where(has_prev & has_next, xp + (xn - xp) * w, np.where(has_prev, xp, xn))
    out = np.where(has_prev | has_next, out, np.nan).astype(np.float32)
    out[ok] = x[ok]  # valid dates keep their exact value
    return out


def resample_series(series: np.ndarray, times: np.ndarray, n_steps: int) -> np.ndarray:
    """(..., T) gap-free series at `times` -> (..., n_steps) at equally spaced times from first to last date."""
    x = np.asarray(series, dtype=np.float32)
    tt = np.asarray(times, dtype=np.float64)
    if tt.shape != (x.shape[-1],) or np.any(np.diff(tt) < 0):
        raise ValueError("times must be one non-decreasing value per date")
    grid = np.linspace(tt[0], tt[-1], n_steps)
    hi = np.clip(np.searchsorted(tt, grid, side="right"), 1, len(tt) - 1)
    lo = hi - 1
    span = tt[hi] - tt[lo]
    w = np.divide(grid - tt[lo], span, out=np.zeros_like(grid), where=span > 0).clip(0, 1).astype(np.float32)
    if len(tt) == 1:
        return np.repeat(x, n_steps, axis=-1)
    return x[..., lo] + (x[..., hi] - x[..., lo]) * w
