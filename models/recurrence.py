"""Recurrence plots of pixel time series, vectorised in numpy (no torch, so the plugin can use them).

Semantics equal `pyts.image.RecurrencePlot(dimension=1, time_delay=1)`:
- unthresholded: R_ij = |x_i - x_j|;
- `eps` given: R_ij = 1 if |x_i - x_j| < eps else 0 (pyts compares with a strict '<');
- `percentage` given: eps is derived per series, either as the `percentage`-th percentile of the T×T
  distances (mode 'point', numpy's linear percentile) or as `percentage`% of the largest distance
  (mode 'distance').
"""

from __future__ import annotations

import numpy as np

CHUNK_PIXELS = 64  # series per chunk: keeps the (chunk, T, T) temporaries in cache, memory bounded


def _lerp_percentile(sorted_lo: np.ndarray, sorted_hi: np.ndarray, frac: float) -> np.ndarray:
    """numpy's 'linear' percentile between two neighbouring order statistics, bit for bit.

    numpy computes a + (b - a) * t, but b - (b - a) * (1 - t) when t >= 0.5 (numpy.lib._function_base_impl._lerp).
    """
    diff = sorted_hi - sorted_lo
    if frac >= 0.5:
        return sorted_hi - diff * (1 - frac)
    return sorted_lo + diff * frac


def _point_threshold(dist: np.ndarray, percentage: float) -> np.ndarray:
    """Per-series percentile of the T×T distances, computed on the upper triangle only.

    The full sorted distance list is T zeros (the diagonal) followed by every upper-triangle value twice,
    so order statistic k >= T of the full matrix is order statistic (k - T) // 2 of the upper triangle:
    half the data to partition, same result as np.percentile on the whole matrix.
    """
    n, t, _ = dist.shape
    iu = np.triu_indices(t, k=1)
    upper = dist[:, iu[0], iu[1]]
    position = percentage / 100.0 * (t * t - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, t * t - 1)
    frac = position - lo
    wanted = sorted({(k - t) // 2 for k in (lo, hi) if k >= t})
    part = np.partition(upper, wanted, axis=1) if wanted and upper.shape[1] else upper

    def order_stat(k: int) -> np.ndarray:
        if k < t:
            return np.zeros(n, dtype=dist.dtype)
        return part[:, (k - t) // 2]

    return _lerp_percentile(order_stat(lo), order_stat(hi), frac)


def _plot_chunk(
    x: np.ndarray, eps: float | None, percentage: float | None, mode: str, out: np.ndarray
) -> None:
    # out[:] = |x_i - x_j| without a second full-size temporary
    np.subtract(x[:, :, None], x[:, None, :], out=out)
    np.abs(out, out=out)
    if eps is None and percentage is None:
        return
    if eps is not None:
        thr = np.full(len(x), eps, dtype=out.dtype)
    elif mode == "point":
        thr = _point_threshold(out, percentage)
    else:
        thr = (percentage / 100 * out.max(axis=(1, 2))).astype(out.dtype)
    np.less(out, thr[:, None, None], out=out)


def recurrence_plot(
    x: np.ndarray,
    eps: float | None = None,
    percentage: float | None = None,
    *,
    mode: str = "point",
    dtype: type = np.float32,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Recurrence plots of series `x` (..., T) -> (..., T, T).

    Neither `eps` nor `percentage`: distances |x_i - x_j|. `eps`: binary 1.0 where distance < eps.
    `percentage` (0..100): binary with eps per series from `mode` 'point' (that percentile of the distances)
    or 'distance' (that percentage of the largest distance). `dtype` float32 (fast) or float64 (bit-equal to
    pyts). `out` may be a preallocated (..., T, T) array to write into. NaNs propagate; fill gaps first.
    """
    if eps is not None and percentage is not None:
        raise ValueError("give eps or percentage, not both")
    if eps is not None and not eps > 0:
        raise ValueError("eps must be greater than 0")
    if percentage is not None and not 0 <= percentage <= 100:
        raise ValueError("percentage must be between 0 and 100")
    if mode not in ("point", "distance"):
        raise ValueError("mode must be 'point' or 'distance'")
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError("x must have a time axis of length >= 1")
    lead, t = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, t).astype(dtype, copy=False)
    if out is None:
        out = np.empty((*lead, t, t), dtype=dtype)
    elif out.shape != (*lead, t, t) or out.dtype != np.dtype(dtype):
        raise ValueError(f"out must have shape {(*lead, t, t)} and dtype {np.dtype(dtype)}")
    out_flat = out.reshape(-1, t, t)  # a view: out is contiguous when we made it
    for start in range(0, len(flat), CHUNK_PIXELS):
        stop = start + CHUNK_PIXELS
        _plot_chunk(flat[start:stop], eps, percentage, mode, out_flat[start:stop])
    return out
