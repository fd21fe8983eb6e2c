"""`contrasat train flood ...`: flood training, leave-one-chip-out evaluation, report and ONNX export, and
(region_cli.py) the leave-one-region-out protocol.

Registered in training/cli.py. Exit codes: 0 success, 2 bad input (one-line message). Commands import their
modules when they run, so that building the parser loads no torch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common.data_root import data_root
from ..common.errors import UsageError
from ..common.flood_data.sen1floods11 import floods_dir, list_chips, load_chips
from ..common.options import add_recipe_options
from ..common.runs import default_run_dir
from . import region_cli
from .config import SHIPPED_HOLDOUT, FloodConfig, load_config


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The flood kit's commands under `contrasat train flood`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    f = sub.add_parser("train", help="train one flood model (one fold, or all chips with --holdout none)")
    add_recipe_options(f)
    f.add_argument("--chips", help="comma-separated subset of chips (default: all)")
    f.add_argument(
        "--holdout", default=SHIPPED_HOLDOUT, help="chip to hold out, or 'none' (default %(default)s)"
    )
    f.add_argument("--out", type=Path, help="run directory (default: runs/flood/train-<timestamp>)")
    f.add_argument("--export", type=Path, help="also export ONNX + card to this path")
    f.add_argument("--loco", type=Path, help="a `flood loco` run directory whose figures go into the card")
    f.set_defaults(func=cmd_train)

    lo = sub.add_parser("loco", help="leave-one-chip-out for one recipe + baselines, report, export")
    add_recipe_options(lo)
    lo.add_argument("--chips", help="comma-separated subset of chips (default: all)")
    lo.add_argument(
        "--out",
        type=Path,
        help="run directory; give an earlier one to resume (default: runs/flood/loco-<timestamp>)",
    )
    lo.add_argument(
        "--export",
        type=Path,
        help="export the fold holding out --ship-holdout here (e.g. models/weights/flood_s1_unet.onnx)",
    )
    lo.add_argument("--ship-holdout", default=SHIPPED_HOLDOUT)
    lo.add_argument(
        "--folds", help="comma-separated held-out chips to run, in this order (default: every chip)"
    )
    lo.add_argument("--report", type=Path, help="write the results page here (e.g. docs/results/flood.md)")
    lo.add_argument(
        "--compare", type=Path, nargs="*", default=[], help="other recipes' `flood loco` run dirs to list"
    )
    lo.set_defaults(func=cmd_loco)

    t = sub.add_parser(
        "threshold", help="the fixed VH < -20 dB model as ONNX, its card scored from a LOCO run"
    )
    t.add_argument("--loco", required=True, type=Path, help="loco.json of a `flood loco` run")
    t.add_argument(
        "--out", required=True, type=Path, help="ONNX path (e.g. models/weights/flood_vh_threshold.onnx)"
    )
    t.set_defaults(func=cmd_threshold)
    region_cli.add_commands(sub)


def _config(args: argparse.Namespace) -> FloodConfig:
    if args.config is not None and not args.config.is_file():
        raise UsageError(f"config file not found: {args.config}")
    try:
        cfg = load_config(args.config)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad config {args.config}: {exc}") from exc
    if args.steps is not None:
        cfg.steps = args.steps
    if args.seed is not None:
        cfg.seed = args.seed
    if cfg.steps < 1:
        raise UsageError("--steps must be at least 1")
    return cfg


def _chips(args: argparse.Namespace):
    root = args.data if args.data is not None else data_root()
    names = list_chips(root)
    if not names:
        raise UsageError(
            f"no Sen1Floods11 chips found under {floods_dir(root)} (set --data or CONTRASAT_DATA)"
        )
    if args.chips:
        wanted = [c.strip() for c in args.chips.split(",") if c.strip()]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise UsageError(f"unknown chip(s) {', '.join(missing)}; available: {', '.join(names)}")
        names = wanted
    return load_chips(names, root)


def _export_fold(folder: Path, path: Path, loco_summary: dict | None) -> dict:
    """Export a saved fold with its card; returns facts for the report."""
    from ..common.export import OPSET, export_s1_net
    from .card import flood_card
    from .evaluate import counts_from
    from .loco import loco_counts
    from .train import load_fold

    result, net, spec = load_fold(folder)
    cfg = FloodConfig.from_dict(result["config"])
    holdout = result["holdout"]
    train_chips = result.get("train_chips", [])
    heldout = counts_from(result) if result["counts"] else None
    loco = loco_counts(loco_summary) if loco_summary else None
    card = flood_card(spec, cfg, holdout, train_chips, heldout, loco, result["params"])
    diff = export_s1_net(net, card, path)
    print(f"exported {path} ({path.stat().st_size / 1024:.0f} kB), ORT vs torch max |diff| {diff:.1e}")
    return {
        "chip": holdout,
        "heldout": result["counts"],
        "size_kb": path.stat().st_size / 1024,
        "parity": diff,
        "opset": OPSET,
    }


def cmd_train(args: argparse.Namespace) -> int:
    from .report import plot_curve
    from .train import save_fold, train_fold

    args.out = args.out or default_run_dir("flood", "train")
    cfg = _config(args)
    chips = _chips(args)
    holdout = None if args.holdout.lower() == "none" else args.holdout
    if holdout is not None and holdout not in [c.name for c in chips]:
        raise UsageError(
            f"hold-out chip '{holdout}' not found; available: {', '.join(c.name for c in chips)}"
        )
    run = train_fold(cfg, chips, holdout, progress=not args.quiet)
    save_fold(run, cfg, args.out, train_chips=[c.name for c in chips if c.name != holdout])
    ref = run.counts["fixed_vh_-20dB"].iou if run.counts else None
    plot_curve(run.history, args.out / "curve.png", f"flood U-Net, holdout {holdout}", ref)
    for m, c in run.counts.items():
        print(f"{holdout} {m}: water IoU {c.iou:.3f} F1 {c.f1:.3f} accuracy {c.accuracy:.3f}")
    if args.export:
        loco = None
        if args.loco:
            loco_file = args.loco / "loco.json"
            if not loco_file.is_file():
                raise UsageError(f"no loco.json in {args.loco}")
            loco = json.loads(loco_file.read_text())
        _export_fold(args.out, args.export, loco)
    return 0


def cmd_loco(args: argparse.Namespace) -> int:
    from .loco import fold_dir, run_loco
    from .report import plot_curve, write_report

    args.out = args.out or default_run_dir("flood", "loco")
    cfg = _config(args)
    chips = _chips(args)
    names = [c.name for c in chips]
    if (args.export or args.report) and args.ship_holdout not in names:
        raise UsageError(f"--ship-holdout {args.ship_holdout} is not among the chips: {', '.join(names)}")
    others = []
    for d in args.compare:
        if not (d / "loco.json").is_file():
            raise UsageError(
                f"--compare {d}: no loco.json there (run `contrasat train flood loco` for that recipe first)"
            )
        others.append(json.loads((d / "loco.json").read_text()))
    holdouts = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    if holdouts and set(holdouts) - set(names):
        raise UsageError(f"--folds names unknown chip(s): {', '.join(sorted(set(holdouts) - set(names)))}")
    summary = run_loco(cfg, chips, args.out, progress=not args.quiet, holdouts=holdouts)
    summary["command"] = args.argv_echo  # so a report listing this run can say how to reproduce it
    (args.out / "loco.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if args.ship_holdout not in summary["per_chip"] and (args.export or args.report):
        raise UsageError(f"fold {args.ship_holdout} was not run; add it to --folds")
    for n, ms in summary["per_chip"].items():
        print(f"{n:16s} " + "  ".join(f"{m} {_iou(v['iou'])}" for m, v in ms.items()))
    print("POOLED           " + "  ".join(f"{m} {_iou(v['iou'])}" for m, v in summary["pooled"].items()))
    ship_dir = fold_dir(args.out, args.ship_holdout)
    ship_hist = summary["history"].get(args.ship_holdout)
    shipped, ref = None, None
    if ship_hist is not None:
        ref = summary["per_chip"][args.ship_holdout]["fixed_vh_-20dB"]["iou"]
        plot_curve(ship_hist, ship_dir / "curve.png", f"flood U-Net, holdout {args.ship_holdout}", ref)
    if args.export:
        shipped = _export_fold(ship_dir, args.export, summary)
    if args.report and ship_hist is not None:
        curve_png = args.report.with_name(args.report.stem + "_curve.png")
        plot_curve(ship_hist, curve_png, f"shipped fold: {args.ship_holdout} held out", ref)
        if shipped:
            shipped["curve"] = curve_png.name
        cmds = [o["command"] for o in others if "command" in o] + [args.argv_echo]
        write_report(summary, args.report, args.report.with_suffix(".png"), others, shipped, cmds)
        print(f"wrote {args.report}")
    return 0


def cmd_threshold(args: argparse.Namespace) -> int:
    import onnx

    from ...models.card import write_card
    from .threshold import threshold_card, threshold_graph

    if not args.loco.is_file():
        raise UsageError(f"no such loco.json: {args.loco}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(threshold_graph(), str(args.out))
    write_card(args.out, threshold_card(json.loads(args.loco.read_text())))
    print(f"wrote {args.out}")
    return 0


def _iou(x: float | None) -> str:
    return "  —  " if x is None or x != x else f"{x:.3f}"
