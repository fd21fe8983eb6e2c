"""The `contrasat` command: map floods and land cover, list models, run the demo, train (needs torch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .models.errors import Cancelled, ContrasatError
from .models.jobs import JOBS
from .progress import MODES, Reporter


def _config(args: argparse.Namespace):
    from .models.pipeline import RunConfig

    return RunConfig(
        tile_size=getattr(args, "tile", None), overlap=getattr(args, "overlap", None),
        batch_size=getattr(args, "batch", 4), provider=getattr(args, "provider", "auto"),
        threads=getattr(args, "threads", 0), device_id=getattr(args, "device_id", 0),
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
    for line in result.report_lines() if hasattr(result, "report_lines") else ():  # own classes: validation
        print(line)
    for note in result.notes:
        print(f"note: {note}")


# Table parameters that go into RunConfig rather than being keywords of the runtime function.
RUN_CONFIG_OPTIONS = ("tile", "overlap", "batch", "provider", "threads", "device_id")


def cmd_job(args: argparse.Namespace) -> int:
    """Run the job of the table (models/jobs.py) that this command was built from."""
    job = args.job
    kwargs = {p.name: getattr(args, p.name) for p in job.params if p.name not in RUN_CONFIG_OPTIONS}
    if job.name == "classify-series" and len(kwargs["stack"]) == 1:
        kwargs["stack"] = kwargs["stack"][0]  # one file: a multi-band index stack
    result = job.runner()(**kwargs, config=_config(args), progress=args.reporter.progress)
    return _finish(args, result)


def _finish(args: argparse.Namespace, result) -> int:
    """Report a finished job: notes as messages, the summary as text or one JSON document on stdout."""
    summary = result.to_dict()
    for note in summary["notes"]:
        args.reporter.message(note["level"], note["text"])
    args.reporter.done(summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
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
    if args.json:
        listing = [
            {"name": card.name, "default": DEFAULTS.get(card.task) == card.name, "task": card.task,
             "file": str(path), "tile_size": card.tile_size,
             "inputs": [{"name": s.name, "sensor": s.sensor, "bands": s.bands, "units": s.units} for s in card.inputs],
             "classes": [{"value": c.value, "name": c.name, "color": c.color} for c in card.classes],
             "metrics": card.metrics}
            for path, card in found
        ]  # fmt: skip
        print(json.dumps(listing, indent=2))
        return 0 if found else 1
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


# --- finetune (issue 12): fit a flood model to the analyst's own labels; needs torch (the train extra) ---
def cmd_finetune(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ContrasatError("contrasat finetune needs torch: pip install contrasat[train]")
    from .training.finetune.job import FinetuneConfig, run_finetune

    cfg = FinetuneConfig(steps=args.steps, unfreeze=not args.frozen, holdout=args.holdout, edge=args.edge,
                         seed=args.seed, threads=args.threads)  # fmt: skip
    if args.distill is not None:
        cfg.distill = args.distill
    if args.prior is not None:
        cfg.prior = args.prior
    result = run_finetune(args.base, args.raster, args.labels, args.out, args.field, cfg,
                          progress=args.reporter.progress)  # fmt: skip
    summary = result.to_dict()
    for note in result.notes:
        args.reporter.message("info", note)
    args.reporter.done(summary)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    labels = result.card.training["labels"]
    print(f"wrote {result.output} (fine-tuned from {result.card.training['base_model']['name']}, "
          f"{result.seconds:.0f} s, kept step {result.best_step})")  # fmt: skip
    if result.curve:
        print(f"wrote {result.curve}")
    for part in ("train", "heldout"):
        counts = ", ".join(
            f"{k}: {v['polygons']} polygons / {v['pixels']} px" for k, v in labels[part].items()
        )
        print(f"  {part:<8} {counts}")
    for model, iou in summary["heldout_water_iou"].items():
        print(f"  held-back water IoU {model:<10} {'n/a' if iou is None else f'{iou:.3f}'}")
    for note in result.notes:
        print(f"note: {note}")
    return 0


def _add_finetune_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a flood model on your own labelled polygons (needs torch)")
    p.add_argument("--base", default="flood_s1_contrastive",
                   help="model to start from: bundled name or .onnx (default: flood_s1_contrastive, the "
                        "multimodal pre-trained encoder)")  # fmt: skip
    p.add_argument(
        "--raster", nargs="+", required=True, help="Sentinel-1 raster(s) [VV, VH] the labels lie on"
    )
    p.add_argument("--labels", required=True,
                   help="polygons or points in any CRS (.gpkg, .geojson, ...) with a class field, or a label "
                        "raster (values 0 dry, 1 water; -1/255 unlabelled)")  # fmt: skip
    p.add_argument(
        "--field", default="class", help="class field of the label file: water/dry or 1/0 (default class)"
    )
    p.add_argument(
        "--out", required=True, help="the fine-tuned model (.onnx, with its card); a _curve.png beside it"
    )
    p.add_argument(
        "--steps", type=_count(1, "--steps"), default=200, help="training steps at most (default 200)"
    )
    p.add_argument("--holdout", type=float, default=0.25,
                   help="share of each class's polygons held back for early stopping (default 0.25)")  # fmt: skip
    p.add_argument("--edge", type=_count(0, "--edge"), default=1,
                   help="pixels left out along polygon edges (default 1)")  # fmt: skip
    p.add_argument("--frozen", action="store_true", help="keep the encoder frozen throughout")
    p.add_argument("--distill", type=float, default=None,
                   help="weight of the term keeping unlabelled pixels near the base model's output (default "
                        "1; 0 = off)")  # fmt: skip
    p.add_argument("--prior", choices=("none", "scene"), default=None,
                   help="'scene': move the decision to the scene's water share estimated by EM (default none)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_count(1, "--threads"), default=1, help="torch threads (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    p.set_defaults(func=cmd_finetune)


# --- end finetune ---------------------------------------------------------------------------------------


def cmd_train(argv: list[str]) -> int:
    """`contrasat train ...`: one parser over every training kit (training/cli.py)."""
    from .training.cli import main as train_main

    return train_main(argv)


def _count(minimum: int, what: str):
    """argparse type: an integer >= minimum, refused with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be {minimum} or more, not {value}")
        return value

    return parse


def _multiple(of: int, minimum: int, what: str):
    """argparse type: an integer >= minimum that is a multiple of `of`."""

    def parse(text: str) -> int:
        value = _count(minimum, what)(text)
        if value % of:
            raise argparse.ArgumentTypeError(f"{what} must be a multiple of {of}, not {value}")
        return value

    return parse


def _add_job_arguments(p: argparse.ArgumentParser, job) -> None:
    """Arguments of one job from the job table: one option per parameter, checked by type where possible."""
    for param in job.params:
        kwargs: dict = {"help": param.help, "dest": param.name}
        if param.required:
            kwargs["required"] = True
        if param.kind in ("rasters", "dates"):
            kwargs["nargs"] = "+"
        if param.kind == "int":
            if param.multiple_of:
                kwargs["type"] = _multiple(param.multiple_of, param.minimum or 0, param.option)
            else:
                kwargs["type"] = _count(
                    param.minimum if param.minimum is not None else -(2**31), param.option
                )
        if param.kind == "choice":
            kwargs["choices"] = list(param.choices)
        kwargs["default"] = param.default
        p.add_argument(param.option, **kwargs)
    p.add_argument("--json", action="store_true", help="print the job summary as one JSON document")
    p.set_defaults(func=cmd_job, job=job)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`contrasat: error: ...`, exit 2) instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _add_global_options(p: argparse.ArgumentParser, default) -> None:
    """Options accepted before or after the command (the subcommand's copy must not reset the main one)."""
    p.add_argument("--progress", choices=MODES, default=default,
                   help="auto: a bar on a terminal; json: one JSON event per line on stderr; none")  # fmt: skip
    p.add_argument("-v", "--verbose", action="count", default=default, help="more log output")
    p.add_argument("-q", "--quiet", action="count", default=default, help="less log output")


def package_version() -> str:
    """The installed package's version; from pyproject.toml or metadata.txt when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contrasat")
    except PackageNotFoundError:
        pass
    root = Path(__file__).resolve().parent
    import re

    for name, pattern in (
        ("pyproject.toml", r'(?m)^version\s*=\s*"([^"]+)"'),
        ("metadata.txt", r"(?m)^version=(\S+)"),
    ):
        path = root / name
        if path.is_file():
            match = re.search(pattern, path.read_text(encoding="utf-8"))
            if match:
                return match.group(1)
    return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="contrasat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"contrasat {package_version()}")
    _add_global_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for job in JOBS:
        _add_job_arguments(sub.add_parser(job.name, help=job.help), job)
    p = sub.add_parser("models", help="bundled models, their inputs and metrics")
    p.add_argument("--json", action="store_true", help="print the model list as one JSON document")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("demo", help="run the jobs on the bundled real sample and write PNG previews")
    p.add_argument("--out", default="contrasat-demo", help="output folder (default: ./contrasat-demo)")
    p.set_defaults(func=cmd_demo)
    _add_batch_parser(sub)
    _add_finetune_parser(sub)
    sub.add_parser(
        "train", help="pre-training, fine-tuning, evaluation, export (needs torch)", add_help=False
    )
    for command in sub.choices.values():
        if command.prog.endswith(" train"):
            continue
        _add_global_options(command, argparse.SUPPRESS)
    return parser


def _sniff_progress(argv: list[str]) -> str:
    """The --progress mode before parsing, so even argument errors follow the JSON protocol."""
    for i, arg in enumerate(argv):
        if arg == "--progress" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in MODES else "auto"
        if arg.startswith("--progress="):
            value = arg.split("=", 1)[1]
            return value if value in MODES else "auto"
    return "auto"


def _setup_logging(verbose: int, quiet: int) -> None:
    import logging

    level = max(
        logging.DEBUG, min(logging.WARNING - 10 * (verbose or 0) + 10 * (quiet or 0), logging.CRITICAL)
    )
    logging.basicConfig(level=level, format="contrasat: %(levelname)s: %(message)s")
    logging.getLogger("contrasat").setLevel(level)
    # GDAL/OGR report through rasterio's and fiona's loggers; the runtime turns what matters into one
    # error line, so their own lines (e.g. every failed write on a full disk) show only with -v (all with -vv).
    logging.captureWarnings(True)  # e.g. rasterio's NotGeoreferencedWarning before our own one-line refusal
    library = {0: logging.CRITICAL + 1, 1: logging.WARNING}.get(
        verbose or 0, logging.DEBUG
    )  # -vv: everything
    for name in ("rasterio", "fiona", "py.warnings"):
        logging.getLogger(name).setLevel(library)


def _hide_native_stderr() -> object | None:
    """Send what C libraries write to fd 2 (libtiff, sqlite: one line per failed write on a full disk) to
    /dev/null, keeping Python's sys.stderr (messages, JSON events, tracebacks) on the real stderr.

    Returns an undo callable, or None when stderr is not the process's fd 2 (e.g. captured by a test).
    """
    import os

    try:
        if sys.stderr.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    original, sys.stderr = sys.stderr, open(saved, "w", buffering=1, closefd=False)  # noqa: SIM115

    def undo() -> None:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = original

    return undo


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # the plugin cancels a job by terminating it: clean up exactly as for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `contrasat` console script; returns the process exit code."""
    import signal
    import threading

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    verbose = any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    undo = None if verbose else _hide_native_stderr()
    reporter = Reporter(_sniff_progress(argv), desc=next((a for a in argv if not a.startswith("-")), ""))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            args = build_parser().parse_args(argv)
        except _UsageError as exc:
            reporter.error(str(exc))
            return 2
        args.reporter = reporter
        _setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", 0))
        return args.func(args)
    except (Cancelled, KeyboardInterrupt):
        reporter.cancelled()
        return 130
    except ContrasatError as exc:
        reporter.error(str(exc))
        return 2
    except OSError as exc:  # file system and GDAL I/O failures (rasterio's are OSErrors): one line, exit 2
        from .models.output_set import one_line

        reporter.error(one_line(exc))
        return 2
    finally:
        reporter.close_bar()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if undo is not None:
            undo()


if __name__ == "__main__":
    sys.exit(main())
