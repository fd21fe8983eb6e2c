"""`contrasat train ownclasses run|report`: the own-classes study and its results page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common.data_root import REPO_ROOT, data_root
from ..common.errors import UsageError

DEFAULT_CONFIG = REPO_ROOT / "training" / "configs" / "ownclasses.toml"
RESULTS = REPO_ROOT / "docs" / "results" / "landcover_own_classes.json"
PAGE = REPO_ROOT / "docs" / "results" / "landcover_own_classes.md"


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The kit's commands under `contrasat train ownclasses`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser(
        "run", help="run the study (every site, k, seed and method) and write its results file"
    )
    r.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="protocol (default %(default)s)")
    r.add_argument(
        "--data", type=Path, help="shared data root (default $CONTRASAT_DATA or <repo>/../shared/data)"
    )
    r.add_argument("--out", type=Path, default=RESULTS, help="results file (default %(default)s)")
    r.add_argument("--sites", help="comma-separated subset of the protocol's sites (a quick check)")
    r.add_argument("--ks", help="comma-separated subset of k")
    r.add_argument("--seeds", help="comma-separated subset of seeds")
    r.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="write the results page (with the verdict) from the results file")
    p.add_argument("--results", type=Path, default=RESULTS, help="results file (default %(default)s)")
    p.add_argument("--out", type=Path, default=PAGE, help="page (default %(default)s)")
    p.set_defaults(func=cmd_report)


def _ints(text: str | None) -> list[int] | None:
    try:
        return [int(v) for v in text.split(",")] if text else None
    except ValueError as exc:
        raise UsageError(f"expected comma-separated integers, got '{text}'") from exc


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_study
    from .study import run_study

    if not args.config.is_file():
        raise UsageError(f"config file not found: {args.config}")
    try:
        cfg = load_study(args.config)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad config {args.config}: {exc}") from exc
    sites = args.sites.split(",") if args.sites else None
    unknown = [s for s in sites or [] if s not in cfg.sites]
    if unknown:
        raise UsageError(f"site(s) {', '.join(unknown)} are not in the protocol")
    try:
        results = run_study(
            cfg, args.data or data_root(), REPO_ROOT, sites, _ints(args.ks), _ints(args.seeds)
        )
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    results["command"] = args.argv_echo if hasattr(args, "argv_echo") else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"{len(results['rows'])} scored runs in {results['seconds']:.0f} s -> {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import render, summarise

    if not args.results.is_file():
        raise UsageError(f"results file not found: {args.results} (run `contrasat train ownclasses run`)")
    results = json.loads(args.results.read_text(encoding="utf-8"))
    args.out.write_text(render(results), encoding="utf-8")
    s = summarise(results)
    t = s["target"].get(s["winner"])
    met = "baseline wins" if t is None else ("target met" if t["met"] else "target not met")
    print(f"winner {s['winner']} ({met}) -> {args.out}")
    return 0
