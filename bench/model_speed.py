"""Bare ONNX Runtime speed of flood models against each other on the same tiles, one run.

Every model gets the same prepared tiles (the bundled real chip mosaicked, cut at the reference model's
tile size and overlap, normalised once with the reference card: the models share the S1 [VV, VH] dB
normalisation inputs, and speed does not depend on the values), the same batch and the runtime's own
session (`load_model`, default threads). Runs are interleaved batch by batch (each batch goes through every
model before the next), so drift of a shared machine hits all alike at a fine grain. Each repeat sums a
model's batch times; the figures are the ratio of medians over repeats and, since a busy machine only ever
adds time, the ratio of the fastest repeats; the load average before and after is recorded. Writes
bench/results/model_speed.json.

    python bench/model_speed.py [candidate.onnx ...]     # default: the bundled flood models
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import mosaic, save_result
from contrasat.models.registry import WEIGHTS_DIR
from contrasat.models.session import load_model
from throughput import bare_tiles

REFERENCE = WEIGHTS_DIR / "flood_s1_ensemble.onnx"


def main(paths: list[Path], reps: int = 4, repeats: int = 5, batch: int = 4) -> dict:
    ref = load_model(REFERENCE)
    models = {p.stem: load_model(p) for p in [REFERENCE, *paths]}
    card = ref.card
    with tempfile.TemporaryDirectory() as tmp:
        raster = mosaic(Path(tmp) / "mosaic.tif", reps)
        tiles = bare_tiles(raster, card, card.tile_size, card.overlap)
    batches = [np.stack(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
    pixels = sum(b.shape[0] * b.shape[2] * b.shape[3] for b in batches)
    load_before = os.getloadavg()
    for m in models.values():  # warm-up: ORT arenas and caches
        m.run({m.card.inputs[0].name: batches[0]})
    seconds: dict[str, list[float]] = {n: [] for n in models}
    for _ in range(repeats):
        spent = dict.fromkeys(models, 0.0)
        for b in batches:
            for name, m in models.items():
                t0 = time.perf_counter()
                m.run({m.card.inputs[0].name: b})
                spent[name] += time.perf_counter() - t0
        for name in models:
            seconds[name].append(spent[name])
    load_after = os.getloadavg()
    med = {n: statistics.median(s) for n, s in seconds.items()}
    best = {n: min(s) for n, s in seconds.items()}
    result = {
        "benchmark": "bare ONNX Runtime, same prepared tiles, same batch, interleaved repeats, one run",
        "reference": REFERENCE.stem, "tile": card.tile_size, "overlap": card.overlap, "batch": batch,
        "tiles": len(tiles), "tile_pixels": pixels, "repeats": repeats, "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "models": {n: {"median_s": round(med[n], 3), "mpx_per_s": round(pixels / med[n] / 1e6, 3),
                       "speedup_over_reference": round(med[REFERENCE.stem] / med[n], 2),
                       "speedup_fastest_repeats": round(best[REFERENCE.stem] / best[n], 2),
                       "seconds": [round(s, 3) for s in seconds[n]]} for n in models},
    }  # fmt: skip
    return save_result("model_speed", result)


if __name__ == "__main__":
    given = [Path(a) for a in sys.argv[1:]]
    print(
        json.dumps(
            main(given or sorted(p for p in WEIGHTS_DIR.glob("flood_*.onnx") if p != REFERENCE)), indent=2
        )
    )
