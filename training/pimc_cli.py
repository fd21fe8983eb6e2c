"""`contrasat train pimc ...`: run the PIMC experiment, write its report, export the product model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = REPO / "runs" / "pimc"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contrasat train pimc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("experiment", help="pre-train + downstream scores for the given seeds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(DEFAULT_RUNS), help="run folder (results.json, checkpoints)")
    p.add_argument("--data", default=None, help="slovenia_patch.npz (default: $CONTRASAT_DATA/eolearn/...)")
    p.add_argument("--pre-epochs", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p = sub.add_parser("report", help="docs/results/pimc.md (+ PNG) from run folders")
    p.add_argument("runs", nargs="*", default=[str(DEFAULT_RUNS)], help="folders holding results.json")
    p.add_argument("--out", default=str(REPO / "docs" / "results" / "pimc.md"))
    p = sub.add_parser("export", help="ONNX land-cover model with its card from a saved classifier")
    p.add_argument("checkpoint", help="pimc_classifier_seed<k>.pt written by 'experiment'")
    p.add_argument("--out", default=str(REPO / "models" / "weights" / "pixel_ts_landcover.onnx"))
    p.add_argument("--results", default=None, help="results.json whose test scores go into the card")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad arguments or missing data)."""
    args = build_parser().parse_args(argv)
    if args.command == "experiment":
        from .pimc_experiment import run
        from .pimc_train import PimcConfig

        cfg = PimcConfig()
        if args.pre_epochs is not None:
            cfg.pre_epochs = args.pre_epochs
        if args.epochs is not None:
            cfg.epochs = args.epochs
        try:
            path = run(args.out, args.seeds, cfg, args.data)
        except FileNotFoundError as exc:
            print(f"contrasat: error: data not found: {exc.filename}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
    elif args.command == "report":
        from .pimc_report import write_report

        print(f"wrote {write_report([Path(r) for r in args.runs], Path(args.out))}")
    else:
        from .pimc_export import export_checkpoint

        print(f"wrote {export_checkpoint(Path(args.checkpoint), Path(args.out), args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
