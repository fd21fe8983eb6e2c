"""`contrasat train finetune study|study-merge|study-report`: the fine-tuning study (how much a few polygons
help), its joined results and its results page.

The fine-tune job itself is `contrasat finetune` (training/finetune/job.py:run_finetune). Registered in
training/cli.py; commands import the study when they run, so that building the parser loads no torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .study.design import BASE, CHIPS, COUNTS, INITS, SEEDS


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The fine-tune kit's commands under `contrasat train finetune`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("study", help="run (or resume) the fine-tuning study")
    p.add_argument("--out", type=Path, default=Path("runs/finetune_study"))
    p.add_argument("--chips", nargs="+", default=list(CHIPS))
    p.add_argument("--counts", nargs="+", type=int, default=list(COUNTS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--steps", type=int, default=None, help="override the recipe's steps (tests)")
    p.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    p.add_argument(
        "--simclr", type=Path, default=None, help="folder of the SimCLR start (default OUT/simclr)"
    )
    p.add_argument("--base", default=BASE, help=f"model the fine-tunes start from (default {BASE})")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="recipe overrides (e.g. loss=pixel unfreeze=false); runs are tagged with them")  # fmt: skip
    p.set_defaults(func=cmd_study)

    r = sub.add_parser("study-report", help="write the study's results page")
    r.add_argument("--results", type=Path, default=Path("docs/results/finetune.json"))
    r.add_argument("--out", type=Path, default=Path("docs/results/finetune.md"))
    r.add_argument(
        "--recipes", type=Path, default=None, help="results file of the dev-chip recipe comparison"
    )
    r.set_defaults(func=cmd_study_report)

    m = sub.add_parser("study-merge", help="join results files of study runs split by chip")
    m.add_argument("parts", nargs="+", type=Path)
    m.add_argument("--out", type=Path, required=True)
    m.set_defaults(func=cmd_study_merge)


def cmd_study(args: argparse.Namespace) -> int:
    from ...models.errors import ModelError
    from ...models.registry import resolve_model
    from ..common.errors import UsageError
    from .study.protocol import parse_setting, run_study

    overrides = dict(parse_setting(text) for text in args.set)
    try:  # before anything is written: a wrong --base used to fail only after the references were scored
        resolve_model(args.base, "flood")
    except ModelError as exc:
        raise UsageError(f"--base: {exc}") from None
    path = run_study(args.out, args.chips, args.counts, args.seeds, args.inits, steps=args.steps,
                     overrides=overrides, simclr=args.simclr, base=args.base)  # fmt: skip
    print(path)
    return 0


def cmd_study_report(args: argparse.Namespace) -> int:
    from .study.report import write_report

    print(write_report(args.results, args.out, args.recipes))
    return 0


def cmd_study_merge(args: argparse.Namespace) -> int:
    from .study.protocol import merge_results

    print(merge_results(args.parts, args.out))
    return 0
