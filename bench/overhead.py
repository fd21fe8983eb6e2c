"""Where a whole `contrasat map-floods` process spends its time around the network, on the 2048² bench raster.

For each model (the default, and any `--model` file such as a candidate export), one run measures, interleaved:

- *whole process*: `python -m contrasat map-floods --s1 R --out O` with default settings, launch to exit
  (the figure bench/throughput.py divides bare ORT by);
- *bare ORT*: the model's session in this process fed the same prepared tiles, same batch;
- *interpreter*: `python -c pass` with this environment (site and the editable install's finder);
- *breakdown*: one instrumented process (the same command through cli.main, with timers wrapped around the
  stages): imports until the command runs, importing the job's modules, card read, model load (session and
  load-time probe, onnxruntime's import included), opening and checking inputs, units and level estimate,
  output planning, then the tiled run: reading (reader thread), ORT (runner thread), blending and writing
  the GeoTIFF (main thread), closing and committing. Threads overlap, so stage seconds add up to more than
  the tiled run's wall time; `run_tiled_wall_s` is the wall time.
- *with polygons and statistics*: the same instrumented run with `--polygons` and `--statistics`.
- *imports*: the total of `-X importtime` over every module the command imports, wherever it is imported.

One run, load average recorded; writes bench/results/overhead.json.

    python bench/overhead.py [--model extra.onnx ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import mosaic, save_result
from contrasat.models.registry import default_model_path
from contrasat.models.session import load_model
from throughput import bare_tiles

# The instrumented child: timers around the stages, then the CLI's own main() on the same arguments.
DRIVER = r"""
import json, sys, threading, time
T0 = time.time()
t = {}
def add(key, seconds):
    t[key] = t.get(key, 0.0) + seconds
def timed(owner, name, key=None):
    fn = getattr(owner, name)
    def wrapper(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            add(key or name, time.perf_counter() - s)
    setattr(owner, name, wrapper)
s = time.perf_counter()
from contrasat import cli
from contrasat.models import jobs
add("import_cli", time.perf_counter() - s)
timed(jobs.Job, "runner", "import_job_modules")
def patch():
    from contrasat.models import card, inference, output_set, pipeline, rasters, session, tiled_job
    timed(pipeline, "read_card", "card_read")
    timed(session, "_open_session", "model_load")
    timed(pipeline, "plan_outputs")
    timed(pipeline, "_open_inputs", "open_inputs")
    timed(pipeline, "has_valid_pixels")
    timed(pipeline, "detect_units")
    timed(pipeline, "detect_level", "level_estimate")
    timed(inference._Tiles, "read", "read_tiles")
    timed(inference._Tiles, "run", "ort")
    timed(inference._Strip, "add", "blend_add")
    timed(inference._Strip, "flush", "flush_with_sink")
    timed(pipeline.ClassSink, "__call__", "sink_write_geotiff")
    timed(pipeline, "run_tiled", "run_tiled_wall")
    timed(pipeline, "_close_rasters", "close_rasters")
    timed(pipeline, "write_polygons", "polygons")
    timed(pipeline, "write_statistics", "statistics")
    timed(output_set.OutputSet, "commit", "commit")
runner = jobs.Job.runner
def first_runner(self):
    fn = runner(self)
    patch()
    return fn
jobs.Job.runner = first_runner
s = time.perf_counter()
code = cli.main(sys.argv[2:])
add("cli_main", time.perf_counter() - s)
t["blend"] = t.get("blend_add", 0.0) + t.get("flush_with_sink", 0.0) - t.get("sink_write_geotiff", 0.0)
with open(sys.argv[1], "w") as f:
    json.dump({"started": T0, "ended": time.time(), "code": code, "stages": t}, f)
cli.exit_process(code)
"""


def command(raster: Path, out: Path, model: Path | None, extras: bool = False) -> list[str]:
    """The map-floods arguments, default settings (with polygons and statistics when `extras`)."""
    args = ["map-floods", "--s1", str(raster), "--out", str(out), "--progress", "none", "-q"]
    if model is not None:
        args += ["--model", str(model)]
    if extras:
        args += ["--polygons", str(out.with_suffix(".gpkg")), "--statistics", str(out.with_suffix(".csv"))]
    return args


def whole_process(args: list[str]) -> float:
    """Wall-clock seconds of one `python -m contrasat ...` process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "contrasat", *args], check=True, capture_output=True)  # noqa: S603
    return time.perf_counter() - t0


def interpreter() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)  # noqa: S603
    return time.perf_counter() - t0


def instrumented(args: list[str], tmp: Path) -> dict:
    """Stage seconds of one process running the command; `startup_s` is launch to the driver's first line."""
    report = tmp / "stages.json"
    t0 = time.time()
    subprocess.run([sys.executable, "-c", DRIVER, str(report), *args], check=True, capture_output=True)  # noqa: S603
    wall = time.time() - t0
    data = json.loads(report.read_text())
    stages = {f"{k}_s": round(v, 3) for k, v in sorted(data["stages"].items())}
    return {"wall_s": round(wall, 3), "startup_s": round(data["started"] - t0, 3),
            "exit_s": round(t0 + wall - data["ended"], 3), **stages}  # fmt: skip


def import_seconds(args: list[str]) -> dict:
    """Total import time of the command (every module, wherever imported) and the largest top-level ones."""
    verbose = ["-v" if a == "-q" else a for a in args]  # -v keeps native stderr, where importtime writes
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "contrasat", *verbose],
                          capture_output=True, text=True, check=True)  # noqa: S603  # fmt: skip
    top = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)  # cumulative, top level (no indent)
        if m:
            top.append((int(m.group(1)) / 1e6, m.group(2)))
    top.sort(reverse=True)
    return {"imports_s": round(sum(s for s, _ in top), 3),
            "largest": {name: round(s, 3) for s, name in top[:8]}}  # fmt: skip


def bare_ort(raster: Path, loaded, batch: int) -> float:
    card = loaded.card
    tiles = bare_tiles(raster, card, card.tile_size, card.overlap)
    batches = [tiles[i : i + batch] for i in range(0, len(tiles), batch)]
    import numpy as np

    stacked = [np.stack(b) for b in batches]
    t0 = time.perf_counter()
    for b in stacked:
        loaded.run({card.inputs[0].name: b})
    return time.perf_counter() - t0


def measure(raster: Path, tmp: Path, model: Path | None, repeats: int, batch: int) -> dict:
    path = model or default_model_path("flood")
    loaded = load_model(path, provider="auto")
    out = tmp / "out.tif"
    plain, extras = command(raster, out, model), command(raster, out, model, extras=True)
    whole_process(plain)  # warm the page cache (raster, libraries, model)
    rows = {"whole_s": [], "bare_s": [], "python_s": [], "stages": [], "stages_extras": []}
    for _ in range(repeats):
        rows["bare_s"].append(bare_ort(raster, loaded, batch))
        rows["whole_s"].append(whole_process(plain))
        rows["python_s"].append(interpreter())
        rows["stages"].append(instrumented(plain, tmp))
        rows["stages_extras"].append(instrumented(extras, tmp))
    med = {k: round(statistics.median(rows[k]), 3) for k in ("whole_s", "bare_s", "python_s")}

    def median_stages(runs: list[dict]) -> dict:
        return {k: round(statistics.median(r.get(k, 0.0) for r in runs), 3) for k in runs[0]}

    return {
        "model": loaded.card.name, "file": path.name, "tile": loaded.card.tile_size,
        "overlap": loaded.card.overlap, "batch": batch, **med,
        "throughput_ratio": round(med["bare_s"] / med["whole_s"], 3),
        "around_network_s": round(med["whole_s"] - med["bare_s"], 3),
        "imports": import_seconds(plain), "stages": median_stages(rows["stages"]),
        "stages_with_polygons_and_statistics": median_stages(rows["stages_extras"]),
        "runs": {k: [round(v, 3) for v in rows[k]] for k in ("whole_s", "bare_s")},
    }  # fmt: skip


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, action="append", default=[], help="another model file to measure"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--name", default="overhead", help="result file name under bench/results")
    a = parser.parse_args()
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raster = mosaic(Path(tmp) / "mosaic_2048.tif", 4, "deflate")
        for model in [None, *a.model]:
            rows.append(measure(raster, Path(tmp), model, a.repeats, a.batch))
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "benchmark": "time around the network in a whole map-floods process, 2048x2048 deflate, default settings",
        "raster": "2048x2048", "input_compression": "deflate", "repeats": a.repeats, "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "target": "throughput_ratio (bare / whole) >= 0.9", "models": rows,
    }  # fmt: skip
    return save_result(a.name, result)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
