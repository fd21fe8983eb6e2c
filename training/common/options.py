"""Command-line options every kit's training commands share, so they read the same in every kit."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_recipe_options(p: argparse.ArgumentParser, config: Path | None = None) -> None:
    """--config (recipe; flags override it), --data, --seed, --steps, --quiet."""
    default = " (default %(default)s)" if config is not None else ""
    p.add_argument(
        "--config",
        type=Path,
        default=config,
        help=f"recipe file (.toml or .json); flags override it{default}",
    )
    p.add_argument(
        "--data", type=Path, help="shared data root (default $CONTRASAT_DATA or <repo>/../shared/data)"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=count, help="training steps per model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def count(text: str) -> int:
    """argparse type: a whole number, 1 or more (steps, batch sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value
