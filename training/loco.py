"""Leave-one-chip-out: one fold per chip, saved as it completes (a rerun resumes), then pooled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config_flood import FloodConfig
from .data_floods import Chip
from .metrics import Counts, pooled
from .train_flood import METHODS, counts_from, save_fold, train_fold


def fold_dir(out: Path, holdout: str) -> Path:
    return out / f"fold_{holdout}"


def run_loco(
    cfg: FloodConfig, chips: list[Chip], out: Path, progress: bool = True, holdouts: list[str] | None = None
) -> dict[str, Any]:
    """Train/score every fold (reusing folds already saved with the same config); write loco.json.

    `holdouts` picks and orders the folds to run (default: all chips); training always uses every other chip,
    so a partial run's folds are the same as a full run's and a later full run reuses them.
    """
    out.mkdir(parents=True, exist_ok=True)
    by_name = {c.name: c for c in chips}
    folds: dict[str, dict[str, Any]] = {}
    for chip in [by_name[h] for h in holdouts] if holdouts else chips:
        folder = fold_dir(out, chip.name)
        done = folder / "result.json"
        if done.is_file() and json.loads(done.read_text())["config"] == cfg.to_dict():
            print(f"fold {chip.name}: reusing {done}")
        else:
            run = train_fold(cfg, chips, chip.name, progress=progress)
            save_fold(run, cfg, folder, [c.name for c in chips if c.name != chip.name])
            ious = ", ".join(f"{m} {c.iou:.3f}" for m, c in run.counts.items())
            print(f"fold {chip.name}: {run.seconds:.0f}s, water IoU {ious}", flush=True)
        folds[chip.name] = json.loads(done.read_text())
    summary = summarise(cfg, {c.name: folds[c.name] for c in chips if c.name in folds})
    (out / "loco.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def summarise(cfg: FloodConfig, folds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-chip and pooled counts/metrics for every method, plus the training curves."""
    per_chip = {name: counts_from(r) for name, r in folds.items()}
    water = {
        name: (c["model"].tp + c["model"].fn) / max(1, sum(vars(c["model"]).values()))
        for name, c in per_chip.items()
    }
    return {
        "recipe": cfg.recipe,
        "config": cfg.to_dict(),
        "per_chip": {n: {m: c[m].summary() for m in METHODS} for n, c in per_chip.items()},
        "pooled": {m: pooled([c[m] for c in per_chip.values()]).summary() for m in METHODS},
        "water_share": water,
        "otsu_db": {n: r["otsu_db"] for n, r in folds.items()},
        "seconds": {n: r["seconds"] for n, r in folds.items()},
        "params": next(iter(folds.values()))["params"],
        "history": {n: r["history"] for n, r in folds.items()},
    }


def loco_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """loco.json -> {"per_chip": {chip: {method: Counts}}, "pooled": {method: Counts}} for the card."""

    def c(d: dict[str, Any]) -> Counts:
        return Counts(d["tp"], d["fp"], d["fn"], d["tn"])

    return {
        "per_chip": {n: {m: c(v) for m, v in ms.items()} for n, ms in summary["per_chip"].items()},
        "pooled": {m: c(v) for m, v in summary["pooled"].items()},
    }
