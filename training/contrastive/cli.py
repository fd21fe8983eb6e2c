"""`contrasat train contrastive ...`: pre-train, fine-tune, evaluate, run the experiment, report, export.

Registered in training/cli.py. Commands import their modules when they run, so that building the parser
(`contrasat train --help`, a runtime-only install) loads no torch.
Runs single-process, or under `torchrun --nproc_per_node N -m contrasat.training.cli contrastive pretrain`
(DDP: gloo on CPU, nccl + AMP on CUDA). Exit codes: 0 success, 2 bad input (one-line message).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from ..common.errors import UsageError
from ..common.options import add_recipe_options
from ..common.runs import default_run_dir

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "contrastive.toml"


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The contrastive kit's commands under `contrasat train contrastive`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("pretrain", help="contrastive pre-training (resumes from <out>/ckpt.pt)")
    add_recipe_options(p, DEFAULT_CONFIG)
    p.add_argument("--method", choices=["multimodal", "simclr_s1", "simclr_s2"])
    p.add_argument("--out", type=Path, required=True, help="run directory")

    f = sub.add_parser("finetune", help="train a segmentation head on a task from pre-trained encoders")
    add_recipe_options(f, DEFAULT_CONFIG)
    f.add_argument("--task", choices=["flood_s1", "flood_fusion", "landcover_s2"])
    f.add_argument(
        "--init", type=Path, nargs="*", default=None, help="pre-training run dir(s); none = random"
    )
    f.add_argument("--mode", choices=["frozen", "finetune"])
    f.add_argument("--fraction", choices=["one", "all"])
    f.add_argument("--out", type=Path, required=True, help="run directory")
    f.add_argument("--export", type=Path, help="also export ONNX + card here")

    e = sub.add_parser("evaluate", help="score a saved finetune run on its task's held-out test scene")
    e.add_argument("--run", type=Path, required=True)
    e.add_argument("--data", type=Path)

    x = sub.add_parser("experiment", help="the whole grid (methods x tasks x modes x fractions x seeds)")
    add_recipe_options(x, DEFAULT_CONFIG)
    x.add_argument(
        "--out",
        type=Path,
        help="grid directory; give an earlier one to resume (default: runs/contrastive/grid-<timestamp>)",
    )
    x.add_argument("--seeds", help="comma-separated seeds (default: the config's)")

    r = sub.add_parser("report", help="write the results page from an experiment grid")
    r.add_argument("--grid", type=Path, required=True, help="an `experiment` grid directory")
    r.add_argument(
        "--out", type=Path, required=True, help="results page (docs/results/contrastive.md in the repository)"
    )

    lo = sub.add_parser("loro", help="pre-trained encoders under the flood leave-one-region-out protocol")
    lo.add_argument("--config", type=Path, required=True, help="training/configs/contrastive_loro.toml")
    lo.add_argument("--out", type=Path, required=True, help="run folder (resumes; workers share it)")
    lo.add_argument("--folds", nargs="*", type=int, help="fold indices to run (default: all)")
    lo.add_argument("--phase", choices=["pretrain", "finetune"], help="run one phase (default: both)")
    lo.add_argument("--starts", nargs="*", help="finetune phase: starts to run (default: all)")

    lr = sub.add_parser("report-loro", help="the flood leave-one-region-out section of the results page")
    lr.add_argument("--results", type=Path, required=True, help="docs/results/contrastive_loro.json")
    lr.add_argument("--page", type=Path, required=True, help="docs/results/contrastive.md (section replaced)")
    lr.add_argument("--runs", type=Path, help="collect this run folder into --results first")
    lr.add_argument("--config", type=Path, help="the protocol the runs followed (with --runs)")
    lr.add_argument("--probe", type=Path, help="results of the frozen-encoder diagnostic (shown beside)")
    lr.add_argument("--probe-runs", type=Path, help="collect this run folder into --probe first")
    lr.add_argument("--probe-config", type=Path, help="the diagnostic's protocol (with --probe-runs)")

    o = sub.add_parser("export", help="export a finetune run (--run) or a grid run (--grid --key) to ONNX")
    o.add_argument("--run", type=Path)
    o.add_argument("--grid", type=Path)
    o.add_argument("--key", help="grid run key task/method/mode/fraction/sSEED")
    o.add_argument(
        "--out", type=Path, required=True, help="ONNX path (bundled models live in models/weights)"
    )
    o.add_argument("--data", type=Path)
    s = sub.add_parser("ship", help="export the best grid configurations (median seed) into models/weights")
    s.add_argument("--grid", type=Path, required=True, help="an `experiment` grid directory")
    s.add_argument(
        "--weights", type=Path, required=True, help="folder to write into (the repository's models/weights)"
    )
    s.add_argument(
        "--with-s1", action="store_true", help="also export flood_s1_contrastive.onnx (multimodal init only)"
    )
    s.add_argument("--data", type=Path)
    fx = sub.add_parser("features", help="export pre-trained encoders as per-pixel feature extractors (ONNX)")
    fx.add_argument("--multimodal", type=Path, required=True, help="multimodal pre-training run directory")
    fx.add_argument("--simclr", type=Path, help="simclr_s2 pre-training run directory")
    fx.add_argument("--out", type=Path, required=True, help="folder (bundled ones live in models/weights)")
    fx.add_argument("--bundled-only", action="store_true", help="only the two multimodal extractors")
    for name, p in sub.choices.items():
        p.set_defaults(func=COMMANDS[name])


def _load(cls: type, args: argparse.Namespace, section: str):
    from ..common.config import load, read_table

    if not args.config.is_file():
        raise UsageError(f"config file not found: {args.config}")
    try:
        has_section = section in read_table(args.config)
        cfg = load(cls, args.config, section if has_section else None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad config {args.config}: {exc}") from exc
    for key in ("seed", "steps", "method", "task", "mode", "fraction"):
        value = getattr(args, key, None)
        if value is not None and hasattr(cfg, key):
            setattr(cfg, key, value)
    return cfg


def _data(args: argparse.Namespace) -> None:
    if getattr(args, "data", None) is not None:
        os.environ["CONTRASAT_DATA"] = str(args.data)  # every loader resolves the same root


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .config import PretrainConfig
    from .pretrain import pretrain

    cfg = _load(PretrainConfig, args, "pretrain")
    _data(args)
    try:
        cfg.validate()
        result = pretrain(cfg, args.out, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if int(os.environ.get("RANK", "0")) == 0:
        loss = result["history"]["loss"]
        print(
            f"{cfg.method}: {len(loss)} steps, loss {loss[0]:.3f} -> {loss[-1]:.3f}; encoders in {args.out / 'encoder.pt'}"
        )
    return 0


def _specs_for(init: list[Path] | None):
    from .pool import load_pool, specs_from, specs_from_dict
    from .pretrain import load_encoders

    if init:
        return specs_from_dict(load_encoders(init[0])["specs"])
    from .config import PretrainConfig

    default = PretrainConfig()  # random init: the same pool statistics a pre-training run would use
    return specs_from(load_pool(default.sources, default.exclude))


def cmd_finetune(args: argparse.Namespace) -> int:
    from .config import FinetuneConfig
    from .finetune import finetune
    from .runs import save_run, task_summary
    from .tasks import load_task

    cfg = _load(FinetuneConfig, args, "finetune")
    _data(args)
    init = args.init if args.init is not None else ([] if cfg.init == "random" else [Path(cfg.init)])
    try:
        cfg.validate()
        data = load_task(cfg.task, cfg.fraction)
        specs = _specs_for(init)
        run = finetune(data, cfg, specs, init or None, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    result = {
        "config": dataclasses.asdict(cfg), "init": [str(p) for p in init], "width": run.net.encoders[run.net.names[0]].channels[0],
        "metrics": run.metrics, "history": run.history, "seconds": round(run.seconds, 1), **task_summary(data),
    }  # fmt: skip
    save_run(args.out, run.net, specs, result)
    _print_metrics(cfg.task, run.metrics, data.split)
    if args.export:
        _export(result, run.net, specs, args.out / "result.json", args.export)
    return 0


def _print_metrics(task: str, metrics: dict, split: str) -> None:
    shown = {k: v for k, v in metrics.items() if k not in ("counts",)}
    print(f"{task} [{split}]: " + json.dumps(shown, default=lambda v: round(float(v), 4)))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .finetune import score
    from .runs import load_run
    from .tasks import load_task

    _data(args)
    if not (args.run / "result.json").is_file():
        raise UsageError(f"no result.json in {args.run} (a `finetune --out` directory)")
    result, net, specs = load_run(args.run)
    data = load_task(result["config"]["task"], result["config"]["fraction"])
    _print_metrics(result["config"]["task"], score(net, data, specs), data.split)
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from ..common.config import load
    from .config import ExperimentConfig
    from .experiment import run_experiment

    if not args.config.is_file():
        raise UsageError(f"config file not found: {args.config}")
    _data(args)
    cfg = load(ExperimentConfig, args.config)
    if args.seeds:
        cfg.seeds = [int(s) for s in args.seeds.split(",")]
    if args.steps is not None:
        cfg.pretrain.steps = cfg.finetune.steps = args.steps
    args.out = args.out or default_run_dir("contrastive", "grid")
    run_experiment(cfg, args.out, progress=not args.quiet)
    print(
        f"results in {args.out / 'results.jsonl'}; write the page with: contrasat train contrastive report --grid {args.out}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    if not (args.grid / "results.jsonl").is_file():
        raise UsageError(
            f"no results.jsonl in {args.grid} (run `contrasat train contrastive experiment` first)"
        )
    write_report(args.grid, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_loro(args: argparse.Namespace) -> int:
    from .region_runs import run_protocol

    if not args.config.is_file():
        raise UsageError(f"config file not found: {args.config}")
    run_protocol(args.config, args.out, args.folds, args.phase, args.starts)
    return 0


def cmd_report_loro(args: argparse.Namespace) -> int:
    from .region_section import write_section

    if args.runs is not None:
        from .region_runs import results

        if args.config is None:
            raise UsageError("--runs needs --config (the protocol file the runs followed)")
        args.results.write_text(json.dumps(results(args.config, args.runs), indent=1), encoding="utf-8")
    if args.probe_runs is not None:
        from .region_runs import results

        if args.probe is None or args.probe_config is None:
            raise UsageError("--probe-runs needs --probe (file to write) and --probe-config")
        args.probe.write_text(
            json.dumps(results(args.probe_config, args.probe_runs), indent=1), encoding="utf-8"
        )
    if not args.results.is_file():
        raise UsageError(f"no results file {args.results} (give --runs and --config to collect one)")
    write_section(args.results, args.page, args.probe)
    print(f"wrote the flood LORO section of {args.page}")
    return 0


def _export(result: dict, net, specs, source: Path | str, out: Path) -> None:
    from .cards import card_for
    from .export import export_segnet

    task = result["config"]["task"]
    metrics = {
        "heldout": {
            "split": result.get("split", ""),
            **{k: v for k, v in result["metrics"].items() if k != "counts"},
        }
    }
    if "grid_summary" in result:
        metrics["experiment"] = result["grid_summary"]
        metrics["heldout"]["selection"] = (
            "configuration with the best mean over seeds on this held-out scene (no validation scene exists "
            "at this scale), median seed shipped"
        )
    if task.startswith("flood"):
        from .report import threshold_reference

        ref = threshold_reference()
        if ref is not None:
            metrics["heldout"]["reference_fixed_vh_-20dB_water_iou"] = round(ref, 4)
    from .cards import CREDITS

    metrics = _rounded(metrics)
    training = {
        "recipe": result["config"],
        "pretraining": result.get("pretrain", result.get("init")),
        "source_run": str(source),
        "data": "; ".join(CREDITS.values()),
    }
    card = card_for(task, specs, net.names, metrics, training)
    diff = export_segnet(net, card, out)
    print(f"exported {out} ({out.stat().st_size / 1024:.0f} kB), ORT vs torch max |diff| {diff:.1e}")


def _rounded(value):
    """Metrics for a card: floats to 4 decimals, NaN (undefined IoU) to null."""
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return None if value != value else round(value, 4)
    return value


def cmd_export(args: argparse.Namespace) -> int:
    from .runs import load_grid_run, load_run

    _data(args)
    if args.run is not None:
        if not (args.run / "result.json").is_file():
            raise UsageError(f"no result.json in {args.run}")
        result, net, specs = load_run(args.run)
        _export(result, net, specs, args.run, args.out)
        return 0
    if args.grid is None or not args.key:
        raise UsageError("give --run DIR, or --grid DIR with --key task/method/mode/fraction/sSEED")
    from .report import config_summary

    try:
        result, net, specs = load_grid_run(args.grid, args.key)
    except (KeyError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    result["grid_summary"] = config_summary(args.grid, args.key)
    _export(result, net, specs, f"{args.grid}:{args.key}", args.out)
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    from .report import best_key

    if not (args.grid / "results.jsonl").is_file():
        raise UsageError(f"no results.jsonl in {args.grid}")
    everything = ("multimodal", "simclr", "random")
    jobs = [("flood_fusion", "flood_s1s2_fusion", everything), ("landcover_s2", "landcover_s2", everything)]
    if args.with_s1:  # the S1 model is the contrastive one by name: multimodal initialisation only
        jobs.append(("flood_s1", "flood_s1_contrastive", ("multimodal",)))
    for task, name, methods in jobs:
        key = best_key(args.grid, task, methods=methods)
        print(f"{name}: shipping {key}")
        ns = argparse.Namespace(
            run=None, grid=args.grid, key=key, out=args.weights / f"{name}.onnx", data=args.data
        )
        cmd_export(ns)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from .features import BUNDLED, EXTRACTORS, build_extractors

    runs = {"multimodal": args.multimodal} | ({"simclr_s2": args.simclr} if args.simclr else {})
    for run in runs.values():
        if not (run / "encoder.pt").is_file():
            raise UsageError(f"no encoder.pt in {run} (run `contrasat train contrastive pretrain` first)")
    names = [n for n in EXTRACTORS if n in BUNDLED or (not args.bundled_only and
                                                        (EXTRACTORS[n][1] != "simclr_s2" or args.simclr))]  # fmt: skip
    for name, info in build_extractors(runs, args.out, names).items():
        print(f"{name}: {info['dim']} features per pixel, parity {info['parity']:.1e} -> {info['path']}")
    return 0


COMMANDS = {
    "pretrain": cmd_pretrain, "finetune": cmd_finetune, "evaluate": cmd_evaluate,
    "experiment": cmd_experiment, "report": cmd_report, "export": cmd_export, "ship": cmd_ship,
    "loro": cmd_loro, "report-loro": cmd_report_loro,
}  # fmt: skip

COMMANDS["features"] = cmd_features  # own line: feature extractors (issue 18) merge beside other new commands
