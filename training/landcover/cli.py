"""`contrasat train landcover ...`: leave-one-site-out evaluation, results page, ONNX export of the winner."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common.data_root import REPO_ROOT
from ..common.errors import UsageError
from ..common.runs import default_run_dir

DEFAULT_CONFIG = REPO_ROOT / "training" / "configs" / "landcover.toml"
WEIGHTS = REPO_ROOT / "models" / "weights"
BUNDLED = WEIGHTS / "landcover_s2_pixel.onnx"
DEFAULT_MODEL = WEIGHTS / "landcover_s2.onnx"


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The land-cover kit's commands under `contrasat train landcover`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("loso", help="leave-one-site-out: majority, gradient boosting, forest, pixel net")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="recipe file (default %(default)s)")
    p.add_argument(
        "--data", type=Path, help="shared data root (default $CONTRASAT_DATA or <repo>/../shared/data)"
    )
    p.add_argument("--out", type=Path, help="run folder (default runs/landcover/loso-<timestamp>)")
    p.add_argument("--reference", type=Path, nargs="*", default=[],
                   help="bundled ONNX models to score on every site through the runtime (no training)")  # fmt: skip
    p = sub.add_parser("export", help="fit the winning method on every site and write ONNX + card")
    p.add_argument("results", type=Path, help="results.json of a loso run (its recipe and scores)")
    p.add_argument("--data", type=Path)
    p.add_argument("--method", help="method to ship (default: the best pooled mIoU of the run)")
    p.add_argument("--out", type=Path, default=BUNDLED, help="ONNX path (default %(default)s)")
    p = sub.add_parser("report", help="results page (+ confusion-matrix PNG) from a loso results.json")
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, required=True, help="page to write (docs/results/landcover.md)")
    p.add_argument("--readme", type=Path, help="README whose land-cover model rows are regenerated")
    p = sub.add_parser("recard", help="write the run's fair comparison into the reference model's card")
    p.add_argument("results", type=Path)
    p.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="the reference ONNX (default %(default)s)"
    )
    parser.set_defaults(func=cmd_landcover)


def cmd_landcover(args: argparse.Namespace) -> int:
    """Run one land-cover command; returns the exit code."""
    if args.command == "loso":
        from .config import load_config
        from .data import data_root, load_sites
        from .evaluate import loso, reference_model, write_results

        if not args.config.is_file():
            raise UsageError(f"config file not found: {args.config}")
        cfg = load_config(args.config)
        root = Path(args.data or data_root())
        try:
            sites = load_sites(root)
        except FileNotFoundError as exc:
            raise UsageError(f"land-cover data not found under {root}") from exc
        references, scored = {}, {}
        for model in args.reference:  # first: cheap, and a broken reference fails before the long run
            from ...models.card import read_card

            card = read_card(model)
            scored[f"reference:{model.stem}"] = reference_model(sites, model, root)
            references[f"reference:{model.stem}"] = {"file": model.name, "description": card.description,
                                                    "heldout": card.metrics.get("heldout", {})}  # fmt: skip
        results = {**loso(sites, cfg), **scored}
        out = Path(args.out or default_run_dir("landcover", "loso"))
        path = write_results(out / "results.json", results, sites, cfg,
                             {"references": references, "command": getattr(args, "argv_echo", "")})  # fmt: skip
        print(f"wrote {path}")
    elif args.command == "export":
        from .export import export_winner

        if not args.results.is_file():
            raise UsageError(f"results file not found: {args.results}")
        print(f"wrote {export_winner(args.results, args.out, args.method, args.data)}")
    elif args.command == "recard":
        import json

        from .recard import recard_reference

        if not args.results.is_file():
            raise UsageError(f"results file not found: {args.results}")
        block = recard_reference(json.loads(args.results.read_text()), args.model)
        print(f"wrote the card of {args.model}: pooled mIoU {block['pooled_miou']} on sites it never saw")
    else:
        from .report import write_report

        if not args.results.is_file():
            raise UsageError(f"results file not found: {args.results}")
        print(f"wrote {write_report(args.results, args.out, readme=args.readme)}")
    return 0
