"""The "Reproduce" block of docs/results/flood.md: the commands that rebuild every figure on the page.

Kept apart from the page so that what a reader is told to run can be tested without the runs themselves.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PLAN = Path("training/configs/flood_loro.toml")
CURVE_RUN = "runs/finetune_curve"


def scored_folds(folds: list[list[str]], regions: list[str]) -> list[int]:
    """Numbers of the plan's folds whose held-out regions were all scored (the rest were not run)."""
    return [k for k, held in enumerate(folds) if held and all(r in regions for r in held)]


def reproduce_lines(
    args: argparse.Namespace, regions: list[str], folds: list[list[str]] | None, study: dict[str, Any] | None
) -> list[str]:
    """Commands, in order: calibration, stress sets, LORO (the whole plan, then the shipped recipe alone on
    the folds scored for it), exports, speed, the fine-tune curve (with `study`) and the page itself."""
    candidates = getattr(args, "candidates", None) or []
    reference = getattr(args, "reference", None)
    # without --only/--seeds/--folds `loro` runs every recipe, seed and fold of the plan (days on 2 cores)
    one = []
    if folds is not None:
        ks = " ".join(map(str, scored_folds(folds, regions)))
        one = [f"nice contrasat train flood loro --config {PLAN} --out runs/loro --only {args.shipped} --seeds 0 "
               f"--folds {ks}   # the shipped recipe alone: one seed, the folds scored here (any teacher is "
               "trained first, inside each fold)"]  # fmt: skip
    curve = []
    if study is not None:
        p = study["protocol"]
        curve = [f"nice contrasat train finetune study --out {CURVE_RUN} --base {p['base']} --chips {' '.join(p['chips'])} "
                 f"--counts {' '.join(map(str, p['counts']))} --seeds {' '.join(map(str, p['seeds']))} --inits {' '.join(p['inits'])}",
                 f"cp {CURVE_RUN}/results.json {args.finetune_curve}"]  # fmt: skip
    return [
        "contrasat train flood calibrate --out docs/results",
        "contrasat train flood stress-build --out tests/fixtures/flood_stress/stress.npz",
        f"nice contrasat train flood loro --config {PLAN} --out runs/loro",
        *one,
        f"contrasat train flood ship --config {PLAN} --recipe {args.shipped} "
        f"--name {args.model_name} --out models/weights/{args.model_name}.onnx",
        *(
            [f"contrasat train flood ship --config {PLAN} --recipe {reference} "
             f"--name {args.reference_model} --out models/weights/{args.reference_model}.onnx"]
            if reference and reference != args.shipped
            else []
        ),
        *(
            [
                f"nice contrasat train flood ship --config {PLAN} --recipe {c} "
                f"--name flood_s1_anchored --out runs/ship/{c}.onnx   # then: stress-score --model runs/ship/{c}.onnx"
                for c in candidates
                if c != args.shipped
            ]
            + [
                "python bench/model_speed.py "
                + " ".join(
                    f"models/weights/{args.model_name}.onnx" if c == args.shipped else f"runs/ship/{c}.onnx"
                    for c in candidates
                )
            ]
            if candidates
            else []
        ),
        *curve,
        f"contrasat train flood report-loro --loro runs/loro --shipped {args.shipped} "
        f"--safeguard {args.safeguard} --model-name {args.model_name} --default {args.default} --readme README.md"
        + (
            f" --candidates {' '.join(candidates)} --speed bench/results/model_speed.json"
            + (f" --reference {reference} --reference-model {args.reference_model}" if reference else "")
            if candidates
            else ""
        )
        + (f" --finetune-curve {args.finetune_curve}" if getattr(args, "finetune_curve", None) else ""),
    ]  # fmt: skip
