"""`contrasat train KIT COMMAND ...`: the one parser of the training kits (needs torch to run a command).

Each kit's cli.py adds its commands with `add_commands(parser)`; building the parser imports no torch, so
`contrasat train --help` works in a runtime-only install. Errors follow the CLI's convention: one line
`contrasat: error: ...` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .common.errors import UsageError

# kit name -> (module with add_commands, one-line help).
KITS: dict[str, tuple[str, str]] = {
    "flood": (".flood.cli", "S1 flood U-Net on Sen1Floods11: train, leave-one-chip-out, report, export"),
    "contrastive": (
        ".contrastive.cli",
        "multimodal S1/S2 contrastive pre-training, fine-tuning, experiment grid, report, export",
    ),
    "pimc": (".pimc.cli", "pixel time-series land cover (recurrence plots): experiment, report, export"),
    "landcover": (
        ".landcover.cli",
        "S2 land cover: leave-one-site-out vs majority class, per-pixel trees and net, report, export",
    ),
    "finetune": (".finetune.cli", "the fine-tuning study: IoU against polygon count, its results page"),
    "ownclasses": (".ownclasses.cli", "land cover in your own classes from a few polygons: study, report"),
}
TRAIN_EXTRA = {"torch", "lmdb", "safetensors"}  # modules of the `train` extra


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's error convention: one line, exit code 2."""

    def error(self, message: str):
        print(f"contrasat: error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> Parser:
    """`contrasat train` with every kit as a subcommand and each kit's own commands below it."""
    parser = Parser(prog="contrasat train", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug messages")
    sub = parser.add_subparsers(dest="kit", required=True, metavar="KIT", parser_class=Parser)
    for kit, (module, help_text) in KITS.items():
        p = sub.add_parser(kit, help=help_text, description=help_text)
        importlib.import_module(module, package=__package__).add_commands(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `contrasat train KIT COMMAND`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv_echo = "contrasat train " + " ".join(argv)  # so reports can say how to reproduce a run
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"contrasat: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name not in TRAIN_EXTRA:
            raise
        print(
            f"contrasat: error: training needs {exc.name} (pip install 'contrasat[train]')", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
