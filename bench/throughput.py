"""End-to-end map-floods throughput against bare ONNX Runtime on the same tiles and batch size, one run.

Bare ONNX Runtime: the same session fed the same prepared tiles already in memory (no reading, no
normalisation, no blending, no writing). The ratio pipeline/bare throughput says how much the runtime
around the network costs. Writes bench/results/throughput.json.
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
import rasterio
from common import RESULTS, mosaic
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from contrasat.models.preprocess import prepare
from contrasat.models.registry import default_model_path
from contrasat.models.session import load_model
from contrasat.models.tiling import tile_starts
from rasterio.windows import Window


def bare_tiles(path: Path, card, tile: int, overlap: int) -> list[np.ndarray]:
    """The tiles the pipeline will run, read and prepared in advance."""
    spec = card.inputs[0]
    with rasterio.open(path) as src:
        tiles = []
        for r in tile_starts(src.height, tile, overlap):
            for c in tile_starts(src.width, tile, overlap):
                tiles.append(prepare(src.read([1, 2], window=Window(c, r, tile, tile)), spec))
    return tiles


def measure(tmp: Path, loaded, reps: int, repeats: int, batch: int, compress: str | None) -> dict:
    """Median seconds of bare ORT and of the pipeline on one mosaic, interleaved so drift hits both alike."""
    card = loaded.card
    tile, overlap = card.tile_size, card.overlap
    raster = mosaic(tmp / f"mosaic_{reps}_{compress}.tif", reps, compress)
    tiles = bare_tiles(raster, card, tile, overlap)
    batches = [np.stack(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
    name = card.inputs[0].name
    config = Execution(batch=batch, provider="auto")
    map_floods(raster, tmp / "warm.tif", config=config)  # warm caches and ORT arenas
    bare_s, pipe_s = [], []
    for k in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            loaded.run({name: b})
        bare_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        map_floods(raster, tmp / f"out{k}.tif", config=config)
        pipe_s.append(time.perf_counter() - t0)
    with rasterio.open(raster) as src:
        pixels = src.width * src.height
        side = f"{src.width}x{src.height}"
    bare, pipe = statistics.median(bare_s), statistics.median(pipe_s)
    return {
        "raster": side, "input_compression": compress or "none", "tiles": len(tiles),
        "bare_mpx_per_s": round(pixels / bare / 1e6, 3), "pipeline_mpx_per_s": round(pixels / pipe / 1e6, 3),
        "throughput_ratio": round(bare / pipe, 3),
    }  # fmt: skip


def main(repeats: int = 5, batch: int = 4) -> dict:
    loaded = load_model(default_model_path("flood"), provider="auto")
    card = loaded.card
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for reps in (2, 4, 6):
            for compress in ("deflate", None):
                runs.append(measure(Path(tmp), loaded, reps, repeats, batch, compress))
    headline = next(r for r in runs if r["raster"] == "2048x2048" and r["input_compression"] == "deflate")
    result = {
        "benchmark": "map-floods end-to-end vs bare ONNX Runtime, same tiles and batch, one run",
        "model": card.name, "provider": loaded.provider, "tile": card.tile_size, "overlap": card.overlap,
        "batch": batch, "repeats": repeats, "cpu_count": os.cpu_count(),
        "throughput_ratio": headline["throughput_ratio"], "headline": "2048x2048, deflate input",
        "target": ">= 0.9", "runs": runs,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(*map(int, sys.argv[1:])), indent=2))
