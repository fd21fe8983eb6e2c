"""Many scenes on Dask distributed: one task per scene, atomic outputs, a summary CSV, retries and resume.

Each scene runs the public job functions (`map_floods`, `land_cover`), which already write their outputs
atomically. After a scene succeeds, a small done-marker JSON records the inputs' size and modification
time, the model file and the options: a re-run skips a scene only when its marker still matches and its
outputs open, so a changed input, model or option is mapped again and a half-finished run resumes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ContrasatError, InputError
from .execution import AUTO, MODEL_DEFAULT, Execution
from .output_set import OutputSet, verify_table

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
# the sensor a task's scene is named after; further inputs (S2 for fusion, a pre-event S1) ride along
PRIMARY = {"flood": "S1", "land_cover": "S2"}
INPUT_KEYS = ("s1", "s2", "pre_event")
MARKER_SUFFIX = ".done.json"
MARKER_VERSION = 1


@dataclass
class Scene:
    """One unit of work: a name (used for output files) and its input rasters by key (s1, s2, pre_event)."""

    name: str
    inputs: dict[str, str]
    listing: str = ""  # the CSV or STAC file that named the scene: an input no output may replace


@dataclass(frozen=True)
class BatchOptions:
    """What every scene's job is asked for; part of the done-marker, so a change redoes the scenes."""

    task: str = "flood"
    model: str | None = None
    polygons: bool = False
    statistics: bool = False
    # one ONNX Runtime thread per task by default, so the worker processes of a LocalCluster do not fight
    execution: Execution = Execution(threads=1)

    def marker_options(self) -> dict[str, Any]:
        """The options a done-marker records: what changes the map, not how the work is run."""
        tile, overlap = self.execution.tile, self.execution.overlap
        return {
            "task": self.task, "model": self.model, "polygons": self.polygons, "statistics": self.statistics,
            "tile_size": None if tile == MODEL_DEFAULT else tile,
            "overlap": None if overlap == MODEL_DEFAULT else overlap,
        }  # fmt: skip


@dataclass
class SceneResult:
    """One line of the summary: status is 'done', 'skipped' (already complete) or 'failed'."""

    scene: str
    status: str
    seconds: float = 0.0
    areas_km2: dict[str, float] = field(default_factory=dict)
    error: str = ""
    output: str = ""
    provider: str = ""


# ----------------------------------------------------------------------------------------------- scene lists


def _local(href: str, base: Path) -> Path:
    """A local path from a CSV cell or a STAC href (file:// or relative to the listing's folder)."""
    if href.startswith("file://"):
        href = href[len("file://") :]
    elif "://" in href:
        raise InputError(f"only local files can be mapped in a batch, not {href}")
    path = Path(href).expanduser()
    return path if path.is_absolute() else base / path


def _from_csv(path: Path, primary: str) -> list[Scene]:
    """Scenes from a CSV with a header naming columns among name, s1, s2, pre_event."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return []
    columns = {c.strip().lower() for c in rows[0] if c}
    if primary.lower() not in columns:
        raise InputError(f"scene list {path.name} needs a '{primary.lower()}' column (and optionally name, "
                         f"{', '.join(k for k in INPUT_KEYS if k != primary.lower())})")  # fmt: skip
    scenes = []
    for row in rows:
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        inputs = {k: str(_local(row[k], path.parent)) for k in INPUT_KEYS if row.get(k)}
        if primary.lower() not in inputs:
            continue  # a blank line or a row without the main raster: nothing to map
        name = row.get("name") or Path(inputs[primary.lower()]).stem
        scenes.append(Scene(name, inputs))
    return scenes


def _from_stac(path: Path, primary: str) -> list[Scene]:
    """Scenes from a STAC item, item collection or list of items whose asset hrefs are local files.

    Assets keyed (case-insensitively) s1, s2 or pre_event are used; an item with one asset whose roles
    include 'data' takes it as the task's main raster.
    """
    data = json.loads(path.read_text())
    items = data.get("features", []) if isinstance(data, dict) and "features" in data else data
    items = items if isinstance(items, list) else [items]
    scenes = []
    for item in items:
        assets = {k.lower(): v for k, v in item.get("assets", {}).items()}
        inputs = {k: str(_local(assets[k]["href"], path.parent)) for k in INPUT_KEYS if k in assets}
        if not inputs:
            data_assets = [a for a in assets.values() if "data" in a.get("roles", [])]
            if len(data_assets) == 1:
                inputs[primary.lower()] = str(_local(data_assets[0]["href"], path.parent))
        if primary.lower() not in inputs:
            raise InputError(
                f"STAC item {item.get('id', '?')} in {path.name} has no '{primary.lower()}' asset"
            )
        scenes.append(Scene(str(item.get("id") or Path(inputs[primary.lower()]).stem), inputs))
    return scenes


def find_scenes(sources: Iterable[str | Path], task: str = "flood") -> list[Scene]:
    """Scenes from folders (every raster in them), raster files, CSV scene lists or STAC item JSON."""
    primary = PRIMARY[task]
    scenes: list[Scene] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES and p.is_file())
            scenes += [Scene(p.stem, {primary.lower(): str(p)}) for p in files]
        elif not path.exists():
            raise InputError(f"scene source not found: {path}")
        elif path.suffix.lower() in (".csv", ".json"):
            read = _from_csv if path.suffix.lower() == ".csv" else _from_stac
            scenes += [Scene(s.name, s.inputs, str(path)) for s in read(path, primary)]
        else:
            scenes.append(Scene(path.stem, {primary.lower(): str(path)}))
    names = [s.name for s in scenes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"scene names must be unique (they name the outputs): {', '.join(duplicates[:5])}")
    return scenes


# ------------------------------------------------------------------------------------------ outputs, markers


def output_paths(scene: Scene, out_dir: Path, options: BatchOptions) -> dict[str, Path]:
    """Where one scene's outputs go: <name>_<task>.tif, and .gpkg / .csv beside it when asked for."""
    stem = out_dir / f"{scene.name}_{options.task}"
    paths = {"out": stem.with_suffix(".tif")}
    if options.polygons:
        paths["polygons"] = stem.with_suffix(".gpkg")
    if options.statistics:
        paths["statistics"] = stem.with_suffix(".csv")
    return paths


def marker_path(scene: Scene, out_dir: Path, options: BatchOptions) -> Path:
    return out_dir / f"{scene.name}_{options.task}{MARKER_SUFFIX}"


def _fingerprint(path: str | Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _expected_marker(scene: Scene, options: BatchOptions) -> dict[str, Any]:
    """The marker fields that must match for a scene to count as done (inputs, model, options)."""
    from .registry import resolve_model

    model = resolve_model(options.model, options.task)
    return {
        "version": MARKER_VERSION,
        "inputs": {k: [str(Path(p).resolve()), *_fingerprint(p)] for k, p in sorted(scene.inputs.items())},
        "model": [str(model.resolve()), *_fingerprint(model)],
        "options": options.marker_options(),
    }


def _outputs_complete(paths: dict[str, Path], shape: list[int]) -> bool:
    """Each output exists and opens; the class raster has the recorded shape and its last block decodes."""
    import rasterio
    from rasterio.windows import Window

    try:
        with rasterio.open(paths["out"]) as src:
            if [src.height, src.width] != list(shape):
                return False
            src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
        if "polygons" in paths:
            import fiona

            with fiona.open(paths["polygons"]) as layer:
                len(layer)
        if "statistics" in paths and not paths["statistics"].stat().st_size:
            return False
    except Exception:  # a missing, truncated or unreadable output: the scene is simply done again
        return False
    return True


def completed(scene: Scene, out_dir: Path, options: BatchOptions) -> SceneResult | None:
    """The recorded result when the scene's marker matches its inputs, model and options and its outputs
    are complete; None when the scene must be (re)done."""
    marker = marker_path(scene, out_dir, options)
    try:
        recorded = json.loads(marker.read_text())
        expected = _expected_marker(scene, options)
    except (OSError, ValueError, ContrasatError):
        return None
    if any(recorded.get(k) != v for k, v in expected.items()):
        return None
    if not _outputs_complete(output_paths(scene, out_dir, options), recorded.get("shape", [])):
        return None
    return SceneResult(
        scene.name, "skipped", 0.0, recorded.get("areas_km2", {}), "", recorded.get("output", ""),
        recorded.get("provider", ""),
    )  # fmt: skip


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ the task


def map_scene(scene: Scene, out_dir: str | Path, options: BatchOptions) -> SceneResult:
    """Map one scene (runs on a worker). Bad input is reported in the result; other errors propagate so
    Dask retries the task (a lost worker, a transient I/O error)."""
    from .pipeline import land_cover, map_floods

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    paths = output_paths(scene, out_dir, options)
    config = options.execution
    extra = {k: str(p) for k, p in paths.items() if k != "out"}
    if options.execution.provider == "cuda" and not _worker_has_cuda():
        why = "CUDA was requested but this worker's onnxruntime has no CUDAExecutionProvider"
        return SceneResult(scene.name, "failed", time.perf_counter() - t0, error=why)
    try:
        expected = _expected_marker(scene, options)
        if options.task == "flood":
            result = map_floods(scene.inputs["s1"], paths["out"], s2=scene.inputs.get("s2"),
                                pre_event=scene.inputs.get("pre_event"), model=options.model, config=config,
                                **extra)  # fmt: skip
        else:
            result = land_cover(scene.inputs["s2"], paths["out"], s1=scene.inputs.get("s1"), model=options.model,
                                config=config, **extra)  # fmt: skip
    except (ContrasatError, KeyError, FileNotFoundError) as exc:
        message = str(exc)
        if isinstance(exc, KeyError):
            message = f"scene has no {exc} input"
        elif isinstance(exc, FileNotFoundError):
            message = f"input not found: {exc.filename}"
        return SceneResult(scene.name, "failed", time.perf_counter() - t0, error=message)
    seconds = time.perf_counter() - t0
    marker = expected | {"shape": list(result.shape), "areas_km2": result.class_area_km2,
                         "output": str(paths["out"]), "seconds": round(seconds, 3), "provider": result.provider}  # fmt: skip
    _write_atomic(marker_path(scene, out_dir, options), json.dumps(marker, indent=1))
    return SceneResult(
        scene.name, "done", seconds, result.class_area_km2, "", str(paths["out"]), result.provider
    )


def _worker_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


# ---------------------------------------------------------------------------------------------- the driver


def check_out_dir(
    scenes: list[Scene], out_dir: Path, summary: str | Path | None = None, options: BatchOptions | None = None
) -> Path:
    """The output folder exists (created if needed) and holds no input, so an input is never overwritten;
    the summary CSV (when given) replaces no input, scene list or scene output (see `plan_summary`).
    A refused batch leaves no folder behind."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} is a file: name a folder (it is created when missing)")
    resolved = out_dir.resolve()
    for scene in scenes:
        for p in scene.inputs.values():
            if Path(p).resolve().parent == resolved:
                raise InputError(f"output folder {out_dir} holds input {Path(p).name}: choose another folder")
    created = [p for p in (out_dir, *out_dir.parents) if not p.exists()]  # innermost first
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        plan_summary(scenes, out_dir, summary, options or BatchOptions()).discard()
    except ContrasatError:
        for folder in created:
            folder.rmdir()
        raise
    return out_dir


def plan_summary(
    scenes: list[Scene], out_dir: Path, summary: str | Path | None, options: BatchOptions
) -> OutputSet:
    """The summary CSV as a checked output: a .csv that is no input raster, scene list or scene output."""
    outputs = OutputSet()
    protected = [p for s in scenes for p in (*s.inputs.values(), s.listing) if p]
    protected += [
        p
        for s in scenes
        for p in (*output_paths(s, out_dir, options).values(), marker_path(s, out_dir, options))
    ]
    outputs.check_inputs(protected)
    outputs.add("batch summary", Path(summary) if summary else out_dir / "batch_summary.csv", "table")
    return outputs


def summary_csv(results: list[SceneResult]) -> str:
    """The summary table: scene, status, area per class (km²), seconds, execution provider, error."""
    classes: list[str] = []
    for r in results:
        classes += [c for c in r.areas_km2 if c not in classes]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["scene", "status", *[f"{c} km2" for c in classes], "seconds", "provider", "error"])
    for r in sorted(results, key=lambda r: r.scene):
        areas = [f"{r.areas_km2[c]:.6f}" if c in r.areas_km2 else "" for c in classes]
        writer.writerow([r.scene, r.status, *areas, f"{r.seconds:.2f}", r.provider, r.error])
    return buf.getvalue()


def local_client(workers: int | str | None = AUTO):
    """A LocalCluster client: single-threaded worker processes (ORT gets one thread each), one per core
    unless `workers` says how many."""
    from distributed import Client, LocalCluster

    n = workers if isinstance(workers, int) else os.cpu_count() or 1
    if n < 1:
        raise InputError(f"the number of workers must be 1 or more, not {n}")
    level = logging.getLogger("contrasat").getEffectiveLevel()  # the workers log at the command's level
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=level)  # fmt: skip
    return Client(cluster)


def _gather(
    futures: dict,
    results: list[SceneResult],
    done_before: int,
    total: int,
    progress: bool | Callable[[float], None],
    on_result: Callable[[SceneResult], None] | None,
) -> None:
    """Each scene's result as its task ends (a task that raised after its retries is a failed scene)."""
    from distributed import as_completed
    from tqdm import tqdm

    report = progress if callable(progress) else None
    bar = tqdm(total=total, initial=done_before, desc="scenes", unit="scene",
               disable=report is not None or not progress)  # fmt: skip
    for future in as_completed(futures):
        scene = futures[future]
        try:
            result = future.result()
        except Exception as exc:  # retries exhausted, or the scene killed its workers repeatedly
            text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            result = SceneResult(scene.name, "failed", error=f"{type(exc).__name__}: {text}")
        results.append(result)
        bar.update(1)
        if result.status == "failed":
            bar.write(f"failed: {scene.name}: {result.error}")
        if on_result is not None:
            on_result(result)
        if report is not None:
            report((done_before + len(results)) / total)
    bar.close()


def run_batch(
    scenes: list[Scene],
    out_dir: str | Path,
    options: BatchOptions | None = None,
    *,
    client=None,
    retries: int = 2,
    resources: dict[str, float] | None = None,
    summary: str | Path | None = None,
    progress: bool | Callable[[float], None] = True,
    on_result: Callable[[SceneResult], None] | None = None,
) -> list[SceneResult]:
    """Map every scene not already complete in `out_dir`, one Dask task per scene; write the summary CSV.

    `client`: a connected `distributed.Client` (e.g. to a cluster's scheduler); None starts a LocalCluster.
    `retries`: how often Dask re-runs a scene whose task raised (bad input is not retried: it cannot
    improve). A worker lost mid-scene is handled by the scheduler, which reruns its scenes elsewhere.
    `resources`: Dask resource annotations every task needs, e.g. {'GPU': 1} on GPU workers.
    `progress`: a bar on stderr (True), none (False), or a callback given the share of scenes finished.
    """
    options = options or BatchOptions()
    out_dir = check_out_dir(scenes, Path(out_dir), summary, options)
    results: list[SceneResult] = []
    todo = []
    for scene in scenes:
        done = completed(scene, out_dir, options)
        if done is not None:
            results.append(done)
        else:
            todo.append(scene)
    if todo:  # nothing to submit when every scene is complete: no cluster, no client needed
        results += _run_scenes(todo, out_dir, options, client, retries, resources, progress, on_result,
                               done_before=len(results), total=len(scenes))  # fmt: skip
    outputs = plan_summary(scenes, out_dir, summary, options)
    text = summary_csv(results)
    outputs.outputs[0].temp.write_text(text, encoding="utf-8")
    outputs.outputs[0].verify = verify_table(len(results))
    outputs.commit()
    return results


def _run_scenes(
    todo: list[Scene],
    out_dir: Path,
    options: BatchOptions,
    client,
    retries: int,
    resources: dict[str, float] | None,
    progress: bool | Callable[[float], None],
    on_result: Callable[[SceneResult], None] | None,
    done_before: int,
    total: int,
) -> list[SceneResult]:
    """Submit the scenes still to do, one Dask task each, and collect their results as they finish."""
    results: list[SceneResult] = []
    own_client = client is None
    if own_client:
        client = local_client()
    try:
        futures = {
            client.submit(map_scene, s, str(out_dir.resolve()), options, key=f"contrasat-{s.name}-{time.time_ns()}",
                          pure=False, retries=retries, resources=resources): s
            for s in todo
        }  # fmt: skip
        _gather(futures, results, done_before, total, progress, on_result)
    finally:
        if own_client:
            cluster = client.cluster
            client.close()
            cluster.close()
    return results


# ------------------------------------------------------------------------------------------------ the job


@dataclass
class BatchRun:
    """What `contrasat batch` did: one result per scene and where the summary table went."""

    results: list[SceneResult]
    summary: Path

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("done", "skipped", "failed")}

    @property
    def exit_code(self) -> int:
        """1 when a scene failed (the others are mapped), else 0."""
        return 1 if self.counts()["failed"] else 0

    def to_dict(self) -> dict[str, Any]:
        """The job summary as plain JSON-ready data (--json and the progress 'done' event)."""
        return {
            "scenes": len(self.results), **self.counts(), "summary": str(self.summary),
            "results": [vars(r) for r in sorted(self.results, key=lambda r: r.scene)], "notes": [],
        }  # fmt: skip

    def text_lines(self) -> list[str]:
        counts = self.counts()
        lines = [f"{len(self.results)} scenes: {counts['done']} mapped, {counts['skipped']} already complete, "
                 f"{counts['failed']} failed; summary {self.summary}"]  # fmt: skip
        return lines + [f"failed: {r.scene}: {r.error}" for r in self.results if r.status == "failed"]


def _resource(text: str) -> tuple[str, float]:
    name, _, amount = text.partition("=")
    try:
        return name, float(amount or 1)
    except ValueError as exc:
        raise InputError(f"--resources takes NAME=AMOUNT, not {text}") from exc


def batch_job(
    scenes: Iterable[str | Path],
    out: str | Path,
    *,
    summary: str | Path | None = None,
    task: str = "flood",
    model: str | None = None,
    polygons: bool = False,
    statistics: bool = False,
    scheduler: str | None = None,
    retries: int = 2,
    resources: Iterable[str] | None = None,
    config: Execution | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,  # noqa: ARG001 - a batch is cancelled by its process
) -> BatchRun:
    """The `batch` job of the table: find the scenes, check the output folder before any cluster starts,
    map them on a Dask scheduler (`scheduler`) or a LocalCluster of `config.workers` processes."""
    sources = [str(s) for s in scenes]
    found = find_scenes(sources, task)
    if not found:
        raise InputError(f"no scenes found in {', '.join(sources)}")
    config = config or Execution()
    if config.threads == AUTO and not scheduler:
        config = replace(config, threads=1)  # one per single-threaded local worker; a cluster's own otherwise
    options = BatchOptions(task, model, polygons, statistics, config)
    check_out_dir(found, Path(out), summary, options)  # before any cluster starts
    needs = dict(_resource(r) for r in resources) if resources else None
    client = None
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
    elif config.workers != AUTO:
        client = local_client(config.workers)
    try:
        results = run_batch(found, out, options, client=client, retries=retries, resources=needs,
                            summary=summary, progress=progress or False)  # fmt: skip
    finally:
        if client is not None:
            cluster = client.cluster if not scheduler else None
            client.close()
            if cluster is not None:
                cluster.close()
    return BatchRun(results, Path(summary) if summary else Path(out) / "batch_summary.csv")
