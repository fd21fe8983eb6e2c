"""The `contrasat` command: map floods and land cover, list models, run the demo, train (needs torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .models.errors import Cancelled, ContrasatError


def _progress_bar(desc: str):
    """A tqdm bar driven by the runtime's 0..1 progress callback; returns (callback, close)."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", leave=False, disable=not sys.stderr.isatty())

    def update(fraction: float) -> None:
        bar.update(round(fraction * 100) - bar.n)

    return update, bar.close


def _config(args: argparse.Namespace):
    from .models.pipeline import RunConfig

    return RunConfig(
        tile_size=args.tile, overlap=args.overlap, batch_size=args.batch, provider=args.provider,
        threads=args.threads,
    )  # fmt: skip


def _print_result(result) -> None:
    print(f"wrote {result.output} ({result.shape[1]}x{result.shape[0]} px, {result.crs})")
    if result.probabilities:
        print(f"wrote {result.probabilities}")
    if result.polygons:
        print(f"wrote {result.polygons}")
    if result.statistics:
        print(f"wrote {result.statistics}")
    print(f"model {result.model_name} on {result.provider}")
    for name, km2 in result.class_area_km2.items():
        print(f"  {name:<20} {km2:10.3f} km²")
    if result.flooded_km2 is not None:
        print(f"flooded area: {result.flooded_km2:.3f} km²")
    for note in result.notes:
        print(f"note: {note}")


def cmd_map_floods(args: argparse.Namespace) -> int:
    from .models.pipeline import map_floods

    update, close = _progress_bar("map-floods")
    try:
        result = map_floods(
            args.s1, args.out, s2=args.s2, pre_event=args.pre_event, aoi=args.aoi, model=args.model,
            probabilities=args.probabilities, polygons=args.polygons, statistics=args.statistics, config=_config(args), progress=update,
        )  # fmt: skip
    finally:
        close()
    _print_result(result)
    return 0


def cmd_land_cover(args: argparse.Namespace) -> int:
    from .models.pipeline import land_cover

    update, close = _progress_bar("land-cover")
    try:
        result = land_cover(
            args.s2, args.out, s1=args.s1, aoi=args.aoi, model=args.model, probabilities=args.probabilities,
            polygons=args.polygons, statistics=args.statistics, config=_config(args), progress=update,
        )  # fmt: skip
    finally:
        close()
    _print_result(result)
    return 0


def cmd_classify_series(args: argparse.Namespace) -> int:
    from .models.series import classify_series

    stack = args.stack[0] if len(args.stack) == 1 else args.stack
    update, close = _progress_bar("classify-series")
    try:
        result = classify_series(
            stack, args.out, dates=args.dates, aoi=args.aoi, model=args.model, config=_config(args),
            progress=update,
        )  # fmt: skip
    finally:
        close()
    _print_result(result)
    return 0


def _flatten(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Card metrics as (dotted key, value) lines; a dict of numbers stays on one line (model vs baselines)."""
    lines = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and all(v is None or isinstance(v, int | float) for v in value.values()):
            # None = undefined (e.g. IoU on a chip without water)
            lines.append(
                (name, ", ".join(f"{k}={'n/a' if v is None else f'{v:.4g}'}" for k, v in value.items()))
            )
        elif isinstance(value, dict):
            lines.extend(_flatten(value, f"{name}."))
        elif not isinstance(value, list):
            lines.append((name, f"{value:.4g}" if isinstance(value, float) else str(value)))
    return lines


def cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import DEFAULTS, bundled_models

    found = bundled_models()
    if not found:
        print("no bundled models found")
        return 1
    for path, card in found:
        default = " (default)" if DEFAULTS.get(card.task) == card.name else ""
        print(f"{card.name}{default}  task={card.task}  file={path.name}  tile={card.tile_size}")
        for spec in card.inputs:
            print(f"  input {spec.name}: {spec.sensor} [{', '.join(spec.bands)}] in {spec.units}")
        print(f"  classes: {', '.join(f'{c.value}={c.name}' for c in card.classes)}")
        for key, value in _flatten(card.metrics):
            print(f"  {key}: {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    for line in run_demo(Path(args.out)):
        print(line)
    return 0


# --- batch (issue 11): many scenes on Dask distributed; self-contained so merges stay clean -------------
def cmd_batch(args: argparse.Namespace) -> int:
    from .models.batch import BatchOptions, check_out_dir, find_scenes, run_batch

    scenes = find_scenes(args.scenes, args.task)
    if not scenes:
        raise ContrasatError(f"no scenes found in {', '.join(args.scenes)}")
    check_out_dir(scenes, Path(args.out))  # before any cluster starts
    options = BatchOptions(
        task=args.task, model=args.model, polygons=args.polygons, statistics=args.statistics,
        tile_size=args.tile, overlap=args.overlap, batch_size=args.batch, provider=args.provider,
        threads=args.threads if args.threads is not None else (0 if args.scheduler else 1),
        device_id=args.device_id,
    )  # fmt: skip
    resources = dict(_resource(r) for r in args.resources) if args.resources else None
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    elif args.workers:
        from .models.batch import local_client

        client = local_client(args.workers)
    try:
        results = run_batch(scenes, args.out, options, client=client, retries=args.retries, resources=resources,
                            summary=args.summary, progress=sys.stderr.isatty())  # fmt: skip
    finally:
        if client is not None:
            cluster = client.cluster if not args.scheduler else None
            client.close()
            if cluster is not None:
                cluster.close()
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    print(f"{len(results)} scenes: {counts['done']} mapped, {counts['skipped']} already complete, "
          f"{counts['failed']} failed; summary {args.summary or Path(args.out) / 'batch_summary.csv'}")  # fmt: skip
    for r in results:
        if r.status == "failed":
            print(f"failed: {r.scene}: {r.error}")
    return 1 if counts["failed"] else 0


def _resource(text: str) -> tuple[str, float]:
    name, _, amount = text.partition("=")
    try:
        return name, float(amount or 1)
    except ValueError as exc:
        raise ContrasatError(f"--resources takes NAME=AMOUNT, not {text}") from exc


def _add_batch_parser(sub) -> None:
    p = sub.add_parser("batch", help="map many scenes with Dask distributed (local cores or a cluster)")
    p.add_argument("scenes", nargs="+", help="folders of rasters, raster files, CSV scene lists (columns name, "
                   "s1, s2, pre_event) or STAC item JSON with local asset hrefs")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (one <scene>_<task>.tif per scene)")
    p.add_argument("--task", choices=["flood", "land_cover"], default="flood")
    p.add_argument(
        "--model", help="bundled model name or path to an .onnx file (default: the task's default)"
    )
    p.add_argument("--polygons", action="store_true", help="also write <scene>_<task>.gpkg class polygons")
    p.add_argument("--statistics", action="store_true", help="also write <scene>_<task>.csv areas per class")
    p.add_argument("--summary", help="summary CSV (default: OUT/batch_summary.csv)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a LocalCluster)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: cores)")
    p.add_argument("--retries", type=int, default=2, help="re-runs of a scene whose task raised")
    p.add_argument("--resources", nargs="+", help="Dask resources each scene needs, e.g. GPU=1")
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: model card)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels (default: model card)")
    p.add_argument(
        "--batch", type=int, default=0, help="tiles per inference batch (0: chosen for the provider)"
    )
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--device-id", dest="device_id", type=int, default=0, help="GPU used by CUDA (default 0)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="ONNX Runtime threads per scene (default: 1 on a LocalCluster, ORT's own on a cluster)",
    )
    p.set_defaults(func=cmd_batch)


# --- end batch ------------------------------------------------------------------------------------------


# `contrasat train KIT ...`: each training kit has its own entry point module in training/.
TRAIN_KITS = {"contrastive": "contrastive_cli", "pimc": "pimc_cli"}


def cmd_train(argv: list[str]) -> int:
    import importlib

    module = TRAIN_KITS.get(argv[0], "cli") if argv else "cli"
    try:
        entry = importlib.import_module(f".training.{module}", package=__package__)
    except ImportError as exc:
        print(
            f"contrasat: error: training needs torch (pip install 'contrasat[train]'): {exc}", file=sys.stderr
        )
        return 2
    return entry.main(argv[1:] if module != "cli" else argv)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aoi", help="polygon file (GeoJSON, GeoPackage, ...) in any CRS")
    p.add_argument("--model", help="bundled model name or path to an .onnx file with a Contrasat card")
    p.add_argument("--probabilities", help="also write float32 class probabilities here")
    p.add_argument("--polygons", help="also write class polygons with area (.gpkg or .geojson)")
    p.add_argument("--statistics", help="also write the area per class as CSV")
    p.add_argument("--tile", type=int, default=None, help="tile size in pixels (default: model card)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels (default: model card)")
    p.add_argument("--batch", type=int, default=4, help="tiles per inference batch")
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contrasat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("map-floods", help="flood map from Sentinel-1 (optionally with Sentinel-2)")
    p.add_argument("--s1", required=True, help="Sentinel-1 raster, [VV, VH] in dB or linear power")
    p.add_argument("--s2", help="Sentinel-2 raster (for fusion models)")
    p.add_argument("--pre-event", dest="pre_event", help="Sentinel-1 raster before the event: separates new flood "
                   "water (1) from permanent water (2)")  # fmt: skip
    p.add_argument("--out", required=True, help="output class GeoTIFF (0 dry, 1 water, 255 nodata)")
    _add_run_options(p)
    p.set_defaults(func=cmd_map_floods)
    p = sub.add_parser("land-cover", help="land-cover map from Sentinel-2 (optionally with Sentinel-1)")
    p.add_argument("--s2", required=True, help="Sentinel-2 raster (L1C 13 bands or L2A 12 bands)")
    p.add_argument("--s1", help="Sentinel-1 raster (for fusion models)")
    p.add_argument("--out", required=True, help="output class GeoTIFF (classes of the model card)")
    _add_run_options(p)
    p.set_defaults(func=cmd_land_cover)
    p = sub.add_parser("classify-series", help="land cover from a multi-date S2 stack (pixel time series)")
    p.add_argument(
        "--stack", required=True, nargs="+",
        help="single-date S2 (or index) rasters dated by name/tag, or one raster with one index band per date",
    )  # fmt: skip
    p.add_argument("--dates", nargs="+", help="YYYY-MM-DD per raster, or per band of a one-file stack")
    p.add_argument("--out", required=True, help="output class GeoTIFF (card classes, 255 nodata)")
    p.add_argument("--aoi", help="polygon file (GeoJSON, GeoPackage, ...) in any CRS")
    p.add_argument("--model", help="bundled model name or path to an .onnx file with a Contrasat card")
    p.add_argument("--tile", type=int, default=None, help="pixel block side (default 64)")
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    p.set_defaults(func=cmd_classify_series, overlap=None, batch=4)
    p = sub.add_parser("models", help="bundled models, their inputs and metrics")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("demo", help="run the jobs on the bundled real sample and write PNG previews")
    p.add_argument("--out", default="contrasat-demo", help="output folder (default: ./contrasat-demo)")
    p.set_defaults(func=cmd_demo)
    _add_batch_parser(sub)
    sub.add_parser(
        "train", help="pre-training, fine-tuning, evaluation, export (needs torch)", add_help=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `contrasat` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Cancelled:
        print("contrasat: cancelled", file=sys.stderr)
        return 130
    except ContrasatError as exc:
        print(f"contrasat: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
