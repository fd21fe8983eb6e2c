"""The OMBRIA pre-event protocol's results: per-region and pooled IoU of every method (networks: mean over
the seeds done for both), and the decision rule of training/configs/flood_change.toml."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..common.metrics import Counts, counts_iou
from .change_data import POST_HOC, VARIANTS, Plan


def summarise(plan: Plan, out: Path) -> dict[str, Any]:
    """Per-region and pooled IoU of every method, seeds completed for both variants, and the decision."""
    regions = [r for fold in plan.folds for r in fold]
    per_seed = {v: _per_seed(out, v, plan, regions) for v in VARIANTS}
    seeds = [s for s in plan.seeds if all(s in per_seed[v] for v in VARIANTS)]
    methods: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        if seeds:
            methods[v] = _seed_mean({s: per_seed[v][s] for s in seeds}, regions)
    for v in POST_HOC:
        done = _per_seed(out, v, plan, regions)
        if done:
            methods[v] = _seed_mean(done, regions) | {"seeds": sorted(done)}
    for name in ("today.json", "forest.json"):
        if (out / name).is_file():
            for m, scores in json.loads((out / name).read_text()).items():
                methods[m] = _one(scores, regions)
    summary = {"regions": regions, "seeds": seeds, "methods": methods, "recipe": asdict(plan.recipe),
               "eval_step": plan.eval_step, "folds": plan.folds}  # fmt: skip
    summary["decision"] = decide(methods, regions) if seeds and "today" in methods else None
    if (out / "facts.json").is_file():
        summary["facts"] = json.loads((out / "facts.json").read_text())
    return summary


def _per_seed(
    out: Path, variant: str, plan: Plan, regions: list[str]
) -> dict[int, dict[str, dict[str, int]]]:
    """{seed: {region: counts}} of the seeds whose every fold is saved for `variant`."""
    found = {}
    for seed in plan.seeds:
        scores: dict[str, dict[str, int]] = {}
        for k in range(len(plan.folds)):
            path = out / variant / f"seed{seed}" / f"fold{k}.json"
            if path.is_file():
                scores.update(json.loads(path.read_text())["scores"])
        if set(scores) == set(regions):
            found[seed] = scores
    return found


def _one(scores: dict[str, dict[str, int]], regions: list[str]) -> dict[str, Any]:
    pooled = sum((Counts(**scores[r]) for r in regions), Counts())
    return {"regions": {r: counts_iou(scores[r]) for r in regions}, "pooled": pooled.iou,
            "counts": {r: scores[r] for r in regions}}  # fmt: skip


def _seed_mean(by_seed: dict[int, dict[str, dict[str, int]]], regions: list[str]) -> dict[str, Any]:
    """Mean over seeds of each region's IoU and of the pooled IoU, with the per-seed values."""
    each = {s: _one(sc, regions) for s, sc in by_seed.items()}
    return {
        "regions": {r: float(np.mean([e["regions"][r] for e in each.values()])) for r in regions},
        "pooled": float(np.mean([e["pooled"] for e in each.values()])),
        "per_seed": {str(s): {"pooled": e["pooled"], "regions": e["regions"]} for s, e in each.items()},
    }


MAX_REGION_DROP = 0.05


def decide(methods: dict[str, dict[str, Any]], regions: list[str]) -> dict[str, Any]:
    """The config's rule: with_before ships only if its pooled IoU beats `after` and today's method, and no
    region is more than MAX_REGION_DROP below today's method."""
    b, a, today = methods["with_before"], methods["after"], methods["today"]
    worst = {r: b["regions"][r] - today["regions"][r] for r in regions}
    checks = {
        "beats_after": b["pooled"] > a["pooled"],
        "beats_today": b["pooled"] > today["pooled"],
        "no_region_below_today": all(d >= -MAX_REGION_DROP for d in worst.values()),
    }
    return {"ships": all(checks.values()), "checks": checks, "region_minus_today": worst}
