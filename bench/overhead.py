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

    python bench/overhead.py [--model NAME_OR_FILE ...] [--repeats 3] [--before PYTHONPATH]

`--before DIR`: the same whole-process and instrumented runs, interleaved, with the package imported from
DIR (a PYTHONPATH holding another checkout's `contrasat`, e.g. the commit before a change); a model given
by bundled name is then that checkout's bundled file.
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
from contrasat.models.registry import resolve_model
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
    peak = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    json.dump({"started": T0, "ended": time.time(), "code": code, "stages": t, "peak_mib": peak}, f)
cli.exit_process(code)
"""


def command(raster: Path, out: Path, model: str | None, extras: bool = False) -> list[str]:
    """The map-floods arguments, default settings (with polygons and statistics when `extras`)."""
    args = ["map-floods", "--s1", str(raster), "--out", str(out), "--progress", "none", "-q"]
    if model is not None:
        args += ["--model", model]
    if extras:
        args += ["--polygons", str(out.with_suffix(".gpkg")), "--statistics", str(out.with_suffix(".csv"))]
    return args


def environment(pythonpath: str | None) -> dict | None:
    """The child's environment: this one, or with `pythonpath` first (another checkout of the package)."""
    return None if pythonpath is None else {**os.environ, "PYTHONPATH": pythonpath}


def whole_process(args: list[str], pythonpath: str | None = None) -> float:
    """Wall-clock seconds of one `python -m contrasat ...` process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "contrasat", *args], check=True, capture_output=True,
                   env=environment(pythonpath))  # noqa: S603  # fmt: skip
    return time.perf_counter() - t0


def interpreter() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)  # noqa: S603
    return time.perf_counter() - t0


def instrumented(args: list[str], tmp: Path, pythonpath: str | None = None) -> dict:
    """Stage seconds of one process running the command; `startup_s` is launch to the driver's first line."""
    report = tmp / "stages.json"
    t0 = time.time()
    subprocess.run([sys.executable, "-c", DRIVER, str(report), *args], check=True, capture_output=True,
                   env=environment(pythonpath))  # noqa: S603  # fmt: skip
    wall = time.time() - t0
    data = json.loads(report.read_text())
    stages = {f"{k}_s": round(v, 3) for k, v in sorted(data["stages"].items())}
    return {"wall_s": round(wall, 3), "startup_s": round(data["started"] - t0, 3),
            "exit_s": round(t0 + wall - data["ended"], 3), "peak_mib": round(data["peak_mib"]), **stages}  # fmt: skip


def import_seconds(args: list[str], pythonpath: str | None = None) -> dict:
    """Total import time of the command (every module, wherever imported) and the largest top-level ones."""
    verbose = ["-v" if a == "-q" else a for a in args]  # -v keeps native stderr, where importtime writes
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "contrasat", *verbose],
                          capture_output=True, text=True, check=True, env=environment(pythonpath))  # noqa: S603  # fmt: skip
    top = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)  # cumulative, top level (no indent)
        if m:
            top.append((int(m.group(1)) / 1e6, m.group(2)))
    top.sort(reverse=True)
    return {"imports_s": round(sum(s for s, _ in top), 3),
            "largest": {name: round(s, 3) for s, name in top[:8]}}  # fmt: skip


def wide_strip(path: Path, width: int = 25000, height: int = 1024) -> Path:
    """A strip as wide as the full-scene bench's frame, tiled from the 2048² mosaic (mirrored): memory in
    the runtime follows the raster's width (strip buffers, block cache), not its height."""
    import numpy as np
    import rasterio

    chip = path.parent / "mosaic_2048.tif"
    with rasterio.open(chip) as src:
        data, profile, descriptions = src.read(window=((0, height), (0, 2048))), src.profile, src.descriptions
    row = np.concatenate([data[:, :, :: -1 if j % 2 else 1] for j in range(-(-width // 2048))], axis=2)
    profile.update(width=width, height=height, blockxsize=512, blockysize=512)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(row[:, :, :width])
        dst.descriptions = descriptions
    return path


def wide_memory(tmp: Path, model: str | None, before: str | None) -> dict:
    """Peak resident memory (VmHWM) and wall time of one instrumented process on the wide strip, per
    checkout: the full-scene bench's width at a fraction of its time."""
    strip = tmp / "wide_strip.tif"
    if not strip.exists():
        wide_strip(strip)
    versions = {"now": None} if before is None else {"now": None, "before": before}
    out = {}
    for label, pythonpath in versions.items():
        run = instrumented(command(strip, tmp / "wide_out.tif", model), tmp, pythonpath)
        out[label] = {"peak_mib": run["peak_mib"], "wall_s": run["wall_s"]}
    return {"raster": "25000x1024", **out}


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


def measure(raster: Path, tmp: Path, model: str | None, repeats: int, batch: int, before: str | None) -> dict:
    """One model: bare ORT, whole processes and instrumented runs, interleaved; the same with `before`."""
    path = resolve_model(model, "flood")
    loaded = load_model(path, provider="auto")
    out = tmp / "out.tif"
    plain, extras = command(raster, out, model), command(raster, out, model, extras=True)
    versions = {"now": None} if before is None else {"now": None, "before": before}
    for pythonpath in versions.values():
        whole_process(plain, pythonpath)  # warm the page cache (raster, libraries, model)
    rows: dict[str, list] = {"bare_s": [], "python_s": []}
    for label in versions:
        rows |= {f"{label}_whole_s": [], f"{label}_stages": [], f"{label}_stages_extras": []}
    for _ in range(repeats):
        rows["bare_s"].append(bare_ort(raster, loaded, batch))
        rows["python_s"].append(interpreter())
        for label, pythonpath in versions.items():
            rows[f"{label}_whole_s"].append(whole_process(plain, pythonpath))
            rows[f"{label}_stages"].append(instrumented(plain, tmp, pythonpath))
            rows[f"{label}_stages_extras"].append(instrumented(extras, tmp, pythonpath))

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    def median_stages(runs: list[dict]) -> dict:
        return {k: median([r.get(k, 0.0) for r in runs]) for k in sorted(set().union(*runs))}

    bare = median(rows["bare_s"])
    result = {"model": loaded.card.name, "file": path.name, "tile": loaded.card.tile_size,
              "overlap": loaded.card.overlap, "batch": batch, "bare_s": bare,
              "python_s": median(rows["python_s"]), "bare_runs_s": [round(v, 3) for v in rows["bare_s"]]}  # fmt: skip
    for label, pythonpath in versions.items():
        whole = median(rows[f"{label}_whole_s"])
        result[label] = {
            "whole_s": whole, "throughput_ratio": round(bare / whole, 3),
            "around_network_s": round(whole - bare, 3),
            "whole_runs_s": [round(v, 3) for v in rows[f"{label}_whole_s"]],
            "imports": import_seconds(plain, pythonpath), "stages": median_stages(rows[f"{label}_stages"]),
            "stages_with_polygons_and_statistics": median_stages(rows[f"{label}_stages_extras"]),
        }  # fmt: skip
    result["wide_strip"] = wide_memory(tmp, model, before)
    return result


def class_raster_compression(raster: Path, classes: Path, tmp: Path, repeats: int) -> list[dict]:
    """Seconds to write and close a 2048² class raster, and its size, at deflate level 6 with the
    horizontal predictor (before) and level 4 without (models/outputs.class_profile): a model's map, and
    the speckled VH < -20 dB map of the same raster (a whole scene's maps are speckled)."""
    import numpy as np
    import rasterio
    from contrasat.models.outputs import class_profile
    from rasterio.windows import Window

    with rasterio.open(classes) as src:
        model_map, crs, transform = src.read(1), src.crs, src.transform
    with rasterio.open(raster) as src:
        vh = src.read(2)
    rule_map = np.where(np.isfinite(vh), vh < -20, 255).astype(np.uint8)
    rows = []
    for name, data in (("model map", model_map), ("VH < -20 dB map", rule_map)):
        for options in ({"zlevel": 6, "predictor": 2}, {}):
            profile = class_profile(crs, transform, data.shape[1], data.shape[0], 255) | options
            seconds = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                with rasterio.open(tmp / "classes.tif", "w", **profile) as dst:
                    for r0 in range(0, data.shape[0], 512):
                        dst.write(data[None, r0 : r0 + 512], window=Window(0, r0, data.shape[1], 512))
                seconds.append(time.perf_counter() - t0)
            with rasterio.open(tmp / "classes.tif") as src:
                assert np.array_equal(src.read(1), data)
            rows.append({"map": name, "zlevel": profile.get("zlevel"), "predictor": profile.get("predictor", 1),
                         "write_s": round(statistics.median(seconds), 3),
                         "bytes": (tmp / "classes.tif").stat().st_size})  # fmt: skip
    return rows


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="another model (bundled name or file)")
    parser.add_argument("--before", help="PYTHONPATH of another checkout to compare with, interleaved")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--name", default="overhead", help="result file name under bench/results")
    a = parser.parse_args()
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raster = mosaic(Path(tmp) / "mosaic_2048.tif", 4, "deflate")
        for model in [None, *a.model]:
            rows.append(measure(raster, Path(tmp), model, a.repeats, a.batch, a.before))
            print(json.dumps(rows[-1]), flush=True)
        compression = class_raster_compression(raster, Path(tmp) / "out.tif", Path(tmp), a.repeats)
    result = {
        "benchmark": "time around the network in a whole map-floods process, 2048x2048 deflate, default settings",
        "raster": "2048x2048", "input_compression": "deflate", "repeats": a.repeats, "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "target": "throughput_ratio (bare / whole) >= 0.9", "before": a.before, "models": rows,
        # PYTHONDONTWRITEBYTECODE set: the package's modules are compiled in every process (~25 ms of CPU)
        "bytecode_cached": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "class_raster_compression": compression,
    }  # fmt: skip
    return save_result(a.name, result)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
