"""A whole Sentinel-1 IW scene (25000 × 16000 px) end to end: map-floods with polygons and statistics,
beside bare ONNX Runtime on the same valid tiles; peak memory in a fresh process.

The frame is tiled from the real Sen1Floods11 S1Hand chips (mirrored so seams stay natural) and cut to a
slanted quadrilateral footprint like a GRD scene's, leaving about a quarter of it nodata (NaN). It is written
block by block as a tiled deflate GeoTIFF and kept for re-runs (the model can change: the benchmark takes
the task's default model, or --model NAME).

    python bench/full_scene.py [--model NAME] [--overlap N ...] [--threads 2] [--keep-raster DIR]

Writes bench/results/full_scene.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from common import HWM, SAMPLE_S1, save_result
from contrasat.models.jobs import MIN_POLYGON
from rasterio.windows import Window

WIDTH, HEIGHT, BLOCK = 25000, 16000, 512
SHARED_S1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sen1floods11" / "S1Hand"
# footprint corners (x, y) as fractions of the frame, clockwise: an IW swath tilted by the orbit
FOOTPRINT = [(0.2, 0.0), (1.0, 0.08), (0.8, 1.0), (0.0, 0.92)]


def chips() -> list[np.ndarray]:
    """The real S1 chips ([VV, VH] dB, NaN nodata): the shared Sen1Floods11 set, else the bundled one."""
    paths = sorted(SHARED_S1.glob("*_S1Hand.tif")) if SHARED_S1.is_dir() else []
    out = []
    for p in paths or [SAMPLE_S1]:
        with rasterio.open(p) as src:
            out.append(src.read().astype(np.float32))
    return out


def footprint_mask(row0: int, rows: int) -> np.ndarray:
    """(rows, WIDTH) True inside the slanted footprint (a convex quadrilateral, tested edge by edge)."""
    y, x = np.mgrid[row0 : row0 + rows, 0:WIDTH].astype(np.float32)
    inside = np.ones((rows, WIDTH), dtype=bool)
    corners = [(fx * WIDTH, fy * HEIGHT) for fx, fy in FOOTPRINT]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0  # right of each clockwise edge (y down)
    return inside


def build(path: Path) -> Path:
    """Write the scene strip by strip; a strip is one block high, so memory stays at one strip."""
    pool = chips()
    edge = pool[0].shape[1]
    with rasterio.open(SAMPLE_S1) as src:
        crs, t, descriptions = src.crs, src.transform, src.descriptions
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": 2, "width": WIDTH, "height": HEIGHT, "crs": crs,
        "transform": rasterio.Affine(t.a, 0, t.c, 0, t.e, t.f), "nodata": float("nan"), "tiled": True,
        "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate", "predictor": 3, "BIGTIFF": "YES",
    }  # fmt: skip
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for row0 in range(0, HEIGHT, edge):
            rows = min(edge, HEIGHT - row0)
            i = row0 // edge
            strip = np.concatenate(
                [pool[(i * 5 + j) % len(pool)][:, :: -1 if i % 2 else 1, :: -1 if j % 2 else 1]
                 for j in range(-(-WIDTH // edge))], axis=2,
            )[:, :rows, :WIDTH]  # fmt: skip
            strip = strip.copy()
            strip[:, ~footprint_mask(row0, rows)] = np.nan
            dst.write(strip, window=Window(0, row0, WIDTH, rows))
        dst.descriptions = descriptions
    os.replace(tmp, path)
    return path


def nodata_share(path: Path) -> float:
    with rasterio.open(path) as src:
        total = 0
        for _, win in src.block_windows(1):
            total += int(np.isnan(src.read(2, window=win)).sum())
    return total / (WIDTH * HEIGHT)


# One child per measurement: fresh process, ORT threads fixed; peak memory is the child's VmHWM (common.HWM).
PIPELINE = (
    HWM
    + r"""
import json, sys, time, threading
from contrasat.models import inference, rasters, session
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from contrasat.models.registry import resolve_model
raster, out, model, overlap, threads, batch = sys.argv[1:7]
model_path = resolve_model(model or None, "flood")
overlap = "model" if overlap == "card" else int(overlap)
busy = {"ort_s": 0.0, "read_s": 0.0, "tiles_inferred": 0}
run, read = session.LoadedModel.run, rasters.InputRaster.read
def timed_run(self, feeds):
    t = time.perf_counter(); r = run(self, feeds); busy["ort_s"] += time.perf_counter() - t
    busy["tiles_inferred"] += next(iter(feeds.values())).shape[0]; return r
def timed_read(self, window):
    t = time.perf_counter(); r = read(self, window); busy["read_s"] += time.perf_counter() - t; return r
session.LoadedModel.run, rasters.InputRaster.read = timed_run, timed_read
config = Execution(overlap=overlap, threads=int(threads), batch=int(batch), provider="cpu")
session.load_model(model_path, provider="cpu", threads=int(threads))
base = hwm_mib()
marks = {}
def progress(f):
    if f >= 1.0 and "tiles_done" not in marks: marks["tiles_done"] = time.perf_counter()
t0 = time.perf_counter()
res = map_floods(raster, out + ".tif", model=model_path, polygons=out + ".gpkg", statistics=out + ".csv",
                 config=config, progress=progress)
total = time.perf_counter() - t0
peak = hwm_mib()
print(json.dumps({"seconds": total, "tiles_s": marks["tiles_done"] - t0, "after_tiles_s": t0 + total - marks["tiles_done"],
                  "baseline_mib": base, "peak_mib": peak, "model": res.model_name,
                  "flooded_km2": res.flooded_km2, **busy}))
"""
)

BARE = (
    HWM
    + r"""
import json, sys, time
import numpy as np, rasterio
from rasterio.windows import Window
from contrasat.models.preprocess import prepare, valid_mask
from contrasat.models.registry import resolve_model
from contrasat.models.session import load_model
from contrasat.models.tiling import tile_starts
raster, model, overlap, threads, batch = sys.argv[1:6]
loaded = load_model(resolve_model(model or None, "flood"), provider="cpu", threads=int(threads))
card = loaded.card; spec = card.inputs[0]; tile = card.tile_size
overlap = card.overlap if overlap == "card" else int(overlap)
ort_s, n_valid, n_total, pending = 0.0, 0, 0, []
def flush():
    global ort_s, pending
    x = np.stack(pending); t = time.perf_counter(); loaded.run({spec.name: x}); ort_s += time.perf_counter() - t
    pending = []
with rasterio.Env(GDAL_CACHEMAX=64 * 2**20), rasterio.open(raster) as src:
    for r in tile_starts(src.height, tile, overlap):
        strip = src.read([1, 2], window=Window(0, r, src.width, tile))  # reading is not timed
        for c in tile_starts(src.width, tile, overlap):
            n_total += 1
            raw = strip[:, :, c : c + tile]
            ok = valid_mask(raw, src.nodata)
            if not ok.any():
                continue
            x = prepare(raw, spec); np.copyto(x, 0.0, where=~ok[None]); pending.append(x); n_valid += 1
            if len(pending) == int(batch): flush()
    if pending: flush()
print(json.dumps({"ort_s": ort_s, "tiles_valid": n_valid, "tiles_total": n_total, "tile": tile, "overlap": overlap,
                  "peak_mib": hwm_mib()}))
"""
)


def child(code: str, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)  # noqa: S603
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="flood model name or path (default: the task default)")
    parser.add_argument("--overlap", nargs="+", default=["card"], help="overlaps to time ('card' = card's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--keep-raster", default="/tmp/contrasat-bench", help="folder caching the scene")
    parser.add_argument("--name", default="full_scene", help="results file name in bench/results (no suffix)")
    args = parser.parse_args()

    folder = Path(args.keep_raster)
    folder.mkdir(parents=True, exist_ok=True)
    raster = folder / f"s1_scene_{WIDTH}x{HEIGHT}.tif"
    t0 = time.perf_counter()
    if not raster.exists():
        build(raster)
    build_s = time.perf_counter() - t0
    share = nodata_share(raster)
    runs = []
    for overlap in args.overlap:
        load0 = os.getloadavg()[0]
        pipe = child(PIPELINE, str(raster), str(folder / "flood"), args.model, overlap, str(args.threads),
                     str(args.batch))  # fmt: skip
        bare = child(BARE, str(raster), args.model, overlap, str(args.threads), str(args.batch))
        runs.append({
            "overlap": bare["overlap"], "tile": bare["tile"], "pipeline": pipe, "bare": bare,
            "ratio_bare_over_pipeline": round(bare["ort_s"] / pipe["seconds"], 3),
            "tiles_skipped_share": round(1 - bare["tiles_valid"] / bare["tiles_total"], 3),
            "loadavg_1min_before": round(load0, 2), "loadavg_1min_after": round(os.getloadavg()[0], 2),
        })  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "benchmark": "whole S1 scene, map-floods with polygons and statistics vs bare ONNX Runtime on the same valid tiles",
        "raster": f"{WIDTH}x{HEIGHT}", "input": "tiled 512 deflate float32 [VV, VH] dB from the Sen1Floods11 S1Hand chips",
        "nodata_share": round(share, 3), "min_polygon": MIN_POLYGON.default, "build_s": round(build_s, 1), "threads": args.threads,
        "batch": args.batch, "provider": "CPUExecutionProvider", "cpu_count": os.cpu_count(),
        "model": runs[0]["pipeline"]["model"], "target_s": 120, "target_peak_mib": 1024, "runs": runs,
    }  # fmt: skip
    return save_result(args.name, result)


if __name__ == "__main__":
    main()
