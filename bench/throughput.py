"""End-to-end map-floods throughput against bare ONNX Runtime on the same tiles and batch size, one run.

Bare ONNX Runtime: the same session fed the same prepared tiles already in memory (no reading, no
normalisation, no blending, no writing). The ratio pipeline/bare throughput says how much the runtime
around the network costs. Writes bench/results/throughput.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from common import RESULTS, mosaic
from contrasat.models.pipeline import RunConfig, map_floods
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


def main(reps: int = 4, repeats: int = 5, batch: int = 4) -> dict:
    model_path = default_model_path("flood")
    loaded = load_model(model_path, provider="auto")
    card = loaded.card
    tile, overlap = card.tile_size, card.overlap
    with tempfile.TemporaryDirectory() as tmp:
        raster = mosaic(Path(tmp) / "mosaic.tif", reps)
        tiles = bare_tiles(raster, card, tile, overlap)
        batches = [np.stack(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
        name = card.inputs[0].name
        config = RunConfig(batch_size=batch, provider="auto")
        map_floods(raster, Path(tmp) / "warm.tif", config=config)  # warm caches and ORT arenas
        bare_s, pipe_s = [], []
        for k in range(repeats):  # interleaved so drift hits both alike
            t0 = time.perf_counter()
            for b in batches:
                loaded.run({name: b})
            bare_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            map_floods(raster, Path(tmp) / f"out{k}.tif", config=config)
            pipe_s.append(time.perf_counter() - t0)
        with rasterio.open(raster) as src:
            pixels = src.width * src.height
    bare, pipe = statistics.median(bare_s), statistics.median(pipe_s)
    result = {
        "benchmark": "map-floods end-to-end vs bare ONNX Runtime, same tiles and batch",
        "model": card.name, "provider": loaded.provider, "raster_px": pixels, "tiles": len(tiles),
        "tile": tile, "overlap": overlap, "batch": batch, "repeats": repeats,
        "bare_mpx_per_s": pixels / bare / 1e6, "pipeline_mpx_per_s": pixels / pipe / 1e6,
        "throughput_ratio": bare / pipe, "target": ">= 0.9",
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(*map(int, sys.argv[1:])), indent=2))
