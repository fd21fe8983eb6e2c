"""`contrasat train pimc ...`: run the PIMC experiment, write its report, export the product model, write the
bundled real series (fixture)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common.errors import UsageError
from ..common.runs import default_run_dir


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The PIMC kit's commands under `contrasat train pimc`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("experiment", help="pre-train + downstream scores for the given seeds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--out", help="run folder (results.json, checkpoints; default runs/pimc/experiment-<timestamp>)"
    )
    p.add_argument("--data", default=None, help="slovenia_patch.npz (default: $CONTRASAT_DATA/eolearn/...)")
    p.add_argument("--pre-epochs", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p = sub.add_parser("report", help="docs/results/pimc.md (+ PNG) from run folders")
    p.add_argument("runs", nargs="+", help="folders holding results.json")
    p.add_argument(
        "--out", required=True, help="results page to write (docs/results/pimc.md in the repository)"
    )
    p = sub.add_parser("export", help="ONNX land-cover model with its card from a saved classifier")
    p.add_argument("checkpoint", help="pimc_classifier_seed<k>.pt written by 'experiment'")
    p.add_argument("--out", required=True, help="ONNX path (bundled: models/weights/pixel_ts_landcover.onnx)")
    p.add_argument("--results", default=None, help="results.json whose test scores go into the card")
    p = sub.add_parser("fixture", help="the bundled real series: the Slovenia NDVI stack as one GeoTIFF")
    p.add_argument("--out", default=None, help="GeoTIFF (default resources/series/slovenia_ndvi_stack.tif)")
    p.add_argument("--data", default=None, help="slovenia_patch.npz (default: $CONTRASAT_DATA/eolearn/...)")
    parser.set_defaults(func=cmd_pimc)


def cmd_pimc(args: argparse.Namespace) -> int:
    """Run one PIMC command; returns the exit code (2 for missing data)."""
    if args.command == "experiment":
        from .experiment import run
        from .train import PimcConfig

        cfg = PimcConfig()
        if args.pre_epochs is not None:
            cfg.pre_epochs = args.pre_epochs
        if args.epochs is not None:
            cfg.epochs = args.epochs
        try:
            path = run(args.out or default_run_dir("pimc", "experiment"), args.seeds, cfg, args.data)
        except FileNotFoundError as exc:
            raise UsageError(f"data not found: {exc.filename}") from exc
        print(f"wrote {path}")
    elif args.command == "report":
        from .report import write_report

        print(f"wrote {write_report([Path(r) for r in args.runs], Path(args.out))}")
    elif args.command == "fixture":
        from .fixture import DEFAULT_OUT, write_stack

        try:
            path = write_stack(Path(args.out) if args.out else DEFAULT_OUT, args.data)
        except FileNotFoundError as exc:
            raise UsageError(f"data not found: {exc.filename}") from exc
        print(f"wrote {path}")
    else:
        from .export import export_checkpoint

        print(f"wrote {export_checkpoint(Path(args.checkpoint), Path(args.out), args.results)}")
    return 0
