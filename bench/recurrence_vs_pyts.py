"""Recurrence plots: models.recurrence vs pyts.image.RecurrencePlot on one tile's worth of real NDVI series.

256×256 pixels × 68 dates (the Slovenia patch's 10 100 real series, repeated to fill the tile), processed in
chunks of 4096 series as the runtime does (pyts' float64 output for the whole tile would be 2.4 GB).
Each figure is the best of REPEATS runs (the machine is shared; the minimum is the least disturbed).
Writes bench/results/recurrence.json.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from contrasat.models.recurrence import recurrence_plot

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DATA = (
    Path(os.environ.get("CONTRASAT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    / "eolearn"
    / "slovenia_patch.npz"
)
TILE, CHUNK = 256, 4096
STREAM = 256  # series per block when plots are consumed as they are made (as models/series.py does)
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
MODES = {
    "distances": ({}, {}),
    "eps=0.1": ({"eps": 0.1}, {"threshold": 0.1}),
    "point 20%": ({"percentage": 20}, {"threshold": "point", "percentage": 20}),
    "distance 20%": ({"percentage": 20, "mode": "distance"}, {"threshold": "distance", "percentage": 20}),
}


def best_of(fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> dict:
    from pyts.image import RecurrencePlot

    ndvi = np.load(DATA)["NDVI"][..., 0]  # (T, H, W)
    series = ndvi.reshape(ndvi.shape[0], -1).T
    x = np.resize(series, (TILE * TILE, series.shape[1])).astype(np.float32)
    chunks = [x[i : i + CHUNK] for i in range(0, len(x), CHUNK)]
    buf = np.empty((CHUNK, x.shape[1], x.shape[1]), dtype=np.float32)
    small = np.empty((STREAM, x.shape[1], x.shape[1]), dtype=np.float32)  # stays in cache between blocks
    blocks = [x[i : i + STREAM] for i in range(0, len(x), STREAM)]
    out = {
        "pixels": len(x),
        "dates": int(x.shape[1]),
        "chunk": CHUNK,
        "stream_block": STREAM,
        "repeats": REPEATS,
        "threads": 1,
        "modes": {},
    }
    for name, (ours, theirs) in MODES.items():
        rp = RecurrencePlot(**theirs)
        t_pyts = best_of(lambda rp=rp: [rp.transform(c) for c in chunks])
        t_ours = best_of(lambda o=ours: [recurrence_plot(c, out=buf[: len(c)], **o) for c in chunks])
        t_alloc = best_of(lambda o=ours: [recurrence_plot(c, **o) for c in chunks])
        t_stream = best_of(lambda o=ours: [recurrence_plot(b, out=small[: len(b)], **o) for b in blocks])
        same = np.array_equal(
            recurrence_plot(chunks[0], dtype=np.float64, **ours), rp.transform(chunks[0])
        )  # parity checked on the benchmark data itself
        out["modes"][name] = {
            "pyts_s": round(t_pyts, 3), "ours_s": round(t_ours, 3), "ours_new_arrays_s": round(t_alloc, 3),
            "ours_streamed_s": round(t_stream, 3), "speedup": round(t_pyts / t_ours, 1),
            "speedup_new_arrays": round(t_pyts / t_alloc, 1), "speedup_streamed": round(t_pyts / t_stream, 1),
            "float64_equal_to_pyts": bool(same),
        }  # fmt: skip
        print(name, out["modes"][name], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recurrence.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
