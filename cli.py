"""The `contrasat` command: map floods and land cover, list models, run the demo, train (needs torch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .models.errors import Cancelled, ContrasatError
from .progress import MODES, Reporter


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

    result = map_floods(
        args.s1, args.out, s2=args.s2, pre_event=args.pre_event, aoi=args.aoi, model=args.model,
        probabilities=args.probabilities, polygons=args.polygons, statistics=args.statistics, config=_config(args),
        progress=args.reporter.progress,
    )  # fmt: skip
    return _finish(args, result)


def cmd_land_cover(args: argparse.Namespace) -> int:
    from .models.pipeline import land_cover

    result = land_cover(
        args.s2, args.out, s1=args.s1, aoi=args.aoi, model=args.model, probabilities=args.probabilities,
        polygons=args.polygons, statistics=args.statistics, config=_config(args), progress=args.reporter.progress,
    )  # fmt: skip
    return _finish(args, result)


def cmd_classify_series(args: argparse.Namespace) -> int:
    from .models.series import classify_series

    stack = args.stack[0] if len(args.stack) == 1 else args.stack
    result = classify_series(
        stack, args.out, dates=args.dates, aoi=args.aoi, model=args.model, config=_config(args),
        progress=args.reporter.progress,
    )  # fmt: skip
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


def _tile(text: str) -> int:
    value = _count(16, "--tile")(text)
    if value % 16:
        raise argparse.ArgumentTypeError(f"--tile must be a multiple of 16, not {value}")
    return value


def _add_compute_options(p: argparse.ArgumentParser, tile_help: str) -> None:
    p.add_argument("--tile", type=_tile, default=None, help=tile_help)
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--threads", type=_count(0, "--threads"), default=0,
                   help="ONNX Runtime threads (0: its default; capped at the number of cores)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the job summary as one JSON document")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aoi", help="polygon file (GeoJSON, GeoPackage, ...) in any CRS")
    p.add_argument("--model", help="bundled model name or path to an .onnx file with a Contrasat card")
    p.add_argument("--probabilities", help="also write float32 class probabilities here (.tif)")
    p.add_argument("--polygons", help="also write class polygons with area (.gpkg or .geojson)")
    p.add_argument("--statistics", help="also write the area per class as CSV (.csv)")
    p.add_argument("--overlap", type=_count(0, "--overlap"), default=None,
                   help="tile overlap in pixels (default: model card)")  # fmt: skip
    p.add_argument("--batch", type=_count(1, "--batch"), default=4, help="tiles per inference batch")
    _add_compute_options(p, "tile size in pixels, a multiple of 16 (default: model card)")


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
    p = sub.add_parser("map-floods", help="flood map from Sentinel-1 (optionally with Sentinel-2)")
    p.add_argument("--s1", required=True, help="Sentinel-1 raster [VV, VH]: calibrated sigma0 in dB, linear power "
                   "or amplitude (detected, converted with a note); HH/HV or uncalibrated DN are refused")  # fmt: skip
    p.add_argument("--s2", help="Sentinel-2 raster (for fusion models)")
    p.add_argument("--pre-event", dest="pre_event", help="Sentinel-1 raster before the event: separates new flood "
                   "water (1) from permanent water (2)")  # fmt: skip
    p.add_argument("--out", required=True, help="output class GeoTIFF (0 dry, 1 water, 255 nodata)")
    _add_run_options(p)
    p.set_defaults(func=cmd_map_floods)
    p = sub.add_parser("land-cover", help="land-cover map from Sentinel-2 (optionally with Sentinel-1)")
    p.add_argument("--s2", required=True, help="Sentinel-2 raster: bands found by description (B01..B12, B8A), "
                   "else all 13 L1C bands or 12 L2A bands in order; L2A (no B10) works only with models that do "
                   "not need B10 (see `contrasat models`)")  # fmt: skip
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
    _add_compute_options(p, "pixel block side, a multiple of 16 (default 64)")
    p.set_defaults(func=cmd_classify_series, overlap=None, batch=4)
    p = sub.add_parser("models", help="bundled models, their inputs and metrics")
    p.add_argument("--json", action="store_true", help="print the model list as one JSON document")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("demo", help="run the jobs on the bundled real sample and write PNG previews")
    p.add_argument("--out", default="contrasat-demo", help="output folder (default: ./contrasat-demo)")
    p.set_defaults(func=cmd_demo)
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

    level = logging.WARNING - 10 * (verbose or 0) + 10 * (quiet or 0)
    logging.basicConfig(
        level=max(logging.DEBUG, min(level, logging.CRITICAL)), format="contrasat: %(message)s"
    )


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # the plugin cancels a job by terminating it: clean up exactly as for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `contrasat` console script; returns the process exit code."""
    import signal
    import threading

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
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


if __name__ == "__main__":
    sys.exit(main())
