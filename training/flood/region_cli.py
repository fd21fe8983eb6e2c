"""`contrasat train flood calibrate|stress-build|stress-score|lowcontrast-study|change-loro|loro|ship|report-loro`: the leave-one-region-out
protocol over Sen1Floods11, ETCI 2021 and OMBRIA, from the 8-bit calibration to the results page.

Each command imports its module when it runs, so that building the parser (`contrasat train --help`, a
runtime-only install) loads no torch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common.errors import UsageError

STRESS_FIXTURE = Path("tests/fixtures/flood_stress/stress.npz")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The protocol's commands, added to the flood kit's subcommands."""
    c = sub.add_parser("calibrate", help="fit the 8-bit -> dB maps of ETCI 2021 and OMBRIA to Sen1Floods11")
    c.add_argument("--out", type=Path, default=Path("docs/results"), help="folder for the figure/evidence")
    c.set_defaults(func=cmd_calibrate)

    b = sub.add_parser("stress-build", help="cut the stress sets from real labelled pixels into an .npz")
    b.add_argument("--out", type=Path, required=True)
    b.set_defaults(func=cmd_stress_build)

    s = sub.add_parser("stress-score", help="score an ONNX flood model on the stress sets")
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--fixture", type=Path, default=STRESS_FIXTURE)
    s.add_argument("--json", type=Path, help="also write the figures here")
    s.set_defaults(func=cmd_stress_score)

    lc = sub.add_parser(
        "lowcontrast-study", help="what separates low-contrast water from dry land (LORO, small classifiers)"
    )
    lc.add_argument("--config", type=Path, default=Path("training/configs/lowcontrast.toml"))
    lc.add_argument("--out", type=Path, default=Path("docs/results"), help="folder with flood_stress.json")
    lc.add_argument("--ombria", action="store_true", help="also the OMBRIA pre-event study (config [ombria])")
    lc.set_defaults(func=cmd_lowcontrast_study)

    ch = sub.add_parser(
        "change-loro", help="OMBRIA leave-one-group-out with and without the pre-event scene (resumes)"
    )
    ch.add_argument("--config", type=Path, default=Path("training/configs/flood_change.toml"))
    ch.add_argument("--out", type=Path, default=Path("runs/flood_change"), help="folder for the fold results")
    ch.add_argument(
        "--page", type=Path, default=Path("docs/results"), help="folder for flood_change.md/.json"
    )
    ch.add_argument("--seeds", nargs="*", type=int, help="run only these seeds now (default: the config's)")
    ch.add_argument("--no-forest", action="store_true", help="leave the per-pixel forest baseline out")
    ch.add_argument(
        "--post-hoc", action="store_true", help="also the explanatory variants added after the runs"
    )
    ch.set_defaults(func=cmd_change_loro)

    lo = sub.add_parser("loro", help="leave-one-region-out: every recipe, seed and fold of a plan (resumes)")
    lo.add_argument("--config", type=Path, required=True, help="the plan (training/configs/flood_loro.toml)")
    lo.add_argument("--out", type=Path, required=True)
    lo.add_argument("--only", nargs="*", help="recipe names to run (default: all)")
    lo.add_argument("--seeds", nargs="*", type=int, help="override the recipes' seeds")
    lo.add_argument("--folds", nargs="*", type=int, help="fold numbers to run, in this order (default: all)")
    lo.set_defaults(func=cmd_loro)

    sh = sub.add_parser("ship", help="train a plan's recipe on every region but the demo chip, export it")
    sh.add_argument("--config", type=Path, required=True)
    sh.add_argument("--recipe", required=True)
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--safeguard", choices=["none", "union"], default="none")
    sh.add_argument("--loro", type=Path, help="LORO summary (report's JSON) for the card")
    sh.add_argument("--name", default="flood_s1_ensemble")
    sh.add_argument("--out", type=Path, required=True)
    sh.add_argument("--also-plain", type=Path, help="also export the network without the safeguard here")
    sh.set_defaults(func=cmd_ship)

    rc = sub.add_parser(
        "recard", help="write the LORO figures and bare-ORT speed into an exported model's card"
    )
    rc.add_argument("--model", type=Path, required=True, help="the exported .onnx (its card is rewritten)")
    rc.add_argument("--recipe", required=True, help="its recipe in the LORO results file")
    rc.add_argument("--results", type=Path, default=Path("docs/results/flood_loro.json"))
    rc.add_argument("--method", default="model", choices=["model", "model_or_vh"])
    rc.add_argument("--speed", type=Path, help="bench/results/model_speed.json")
    rc.add_argument("--speed-key", help="the model's name in the speed file (default: the recipe)")
    rc.set_defaults(func=cmd_recard)

    r = sub.add_parser(
        "report-loro", help="docs/results/flood.md from the LORO, calibration and stress files"
    )
    r.add_argument("--loro", type=Path, help="LORO run folder (else the copy in --results is used)")
    r.add_argument("--results", type=Path, default=Path("docs/results"))
    r.add_argument("--shipped", required=True, help="recipe name of the shipped model")
    r.add_argument("--safeguard", default="model", choices=["model", "model_or_vh"])
    r.add_argument("--model-name", required=True)
    r.add_argument("--default", default="flood_vh_threshold", help="the bundled default flood model")
    r.add_argument("--readme", type=Path, help="README whose flood model rows are regenerated")
    r.add_argument("--candidates", nargs="*", help="recipes judged by issue 19's rule to replace --shipped")
    r.add_argument("--speed", type=Path, help="bench/results/model_speed.json for the candidates' section")
    r.add_argument("--reference", help="recipe the candidates are judged against (default: --shipped)")
    r.add_argument(
        "--reference-model", help="bundled name of --reference (its stress figures are the reference)"
    )
    r.add_argument(
        "--finetune-curve", type=Path, help="results file of a finetune study started from a candidate"
    )
    r.set_defaults(func=cmd_report_loro)


def _need_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import write_calibration

    result = write_calibration(args.out)
    print(json.dumps({"etci": result["etci"]["maps"], "ombria": result["ombria"]["fits"]}, indent=1))
    return 0


def cmd_stress_build(args: argparse.Namespace) -> int:
    from .stress import write_fixture

    shapes = write_fixture(args.out)
    print(shapes, f"{args.out.stat().st_size / 1e6:.2f} MB")
    return 0


def cmd_stress_score(args: argparse.Namespace) -> int:
    from .stress import load_fixture, onnx_predictor, score

    _need_file(args.model, "model")
    _need_file(args.fixture, "stress fixture")
    text = json.dumps(score(onnx_predictor(args.model), load_fixture(args.fixture)), indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)
    return 0


def cmd_lowcontrast_study(args: argparse.Namespace) -> int:
    from .lowcontrast_page import write_page
    from .lowcontrast_study import run

    _need_file(args.config, "study config")
    _need_file(args.out / "flood_stress.json", "stress figures")
    om = None
    if args.ombria:
        from .ombria_change import run as run_ombria

        om = run_ombria(args.config)
    print(f"wrote {write_page(args.out, run(args.config), om)}")
    return 0


def cmd_change_loro(args: argparse.Namespace) -> int:
    from .change_loro import run
    from .change_page import write_page

    _need_file(args.config, "protocol")
    summary = run(args.config, args.out, args.seeds, forest=not args.no_forest, post_hoc=args.post_hoc)
    print(f"wrote {write_page(args.page, summary, args.config)}")
    return 0


def cmd_loro(args: argparse.Namespace) -> int:
    from ..common.loro.plan import collect
    from .region_runs import run

    _need_file(args.config, "plan")
    run(args.config, args.out, args.only, args.seeds, args.folds)
    (args.out / "loro.json").write_text(json.dumps(collect(args.out), indent=1), encoding="utf-8")
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    from .region_runs import load_plan
    from .ship import ship

    _need_file(args.config, "plan")
    if args.recipe not in {r.name for r in load_plan(args.config)[0]}:
        raise UsageError(f"no recipe '{args.recipe}' in {args.config}")
    ship(args.config, args.recipe, args.out, args.name, args.seed, args.safeguard, args.loro, args.also_plain)
    return 0


def cmd_recard(args: argparse.Namespace) -> int:
    from .ship import recard, speed_metrics

    _need_file(args.model, "model")
    _need_file(args.results, "LORO results")
    speed = None
    if args.speed:
        _need_file(args.speed, "speed results")
        speed = speed_metrics(
            json.loads(args.speed.read_text(encoding="utf-8")), args.speed_key or args.recipe
        )
    recard(args.model, json.loads(args.results.read_text(encoding="utf-8")), args.recipe, args.method, speed)
    print(f"wrote the card of {args.model}")
    return 0


def cmd_report_loro(args: argparse.Namespace) -> int:
    from .region_page import write_page

    print(f"wrote {write_page(args)}")
    return 0
