"""Leave-one-chip-out (LOCO) over the Sen1Floods11 chips for one recipe, next to the threshold baselines.

One fold per chip, saved as it completes (a rerun resumes), then the counts are pooled.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..common.flood_data.sen1floods11 import Chip
from ..common.metrics import Counts, pooled
from ..common.splits import leave_one_out
from .config import FloodConfig
from .evaluate import METHODS, counts_from
from .train import save_fold, train_fold

log = logging.getLogger(__name__)


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
    for held, _, train_names in leave_one_out(by_name, held_out=holdouts or None):
        done = fold_dir(out, held) / "result.json"
        if done.is_file() and json.loads(done.read_text())["config"] == cfg.to_dict():
            log.info("fold %s: reusing %s", held, done)
        else:
            run = train_fold(cfg, chips, held, progress=progress)
            save_fold(run, cfg, done.parent, train_names)
            ious = ", ".join(f"{m} {c.iou:.3f}" for m, c in run.counts.items())
            log.info("fold %s: %.0fs, water IoU %s", held, run.seconds, ious)
        folds[held] = json.loads(done.read_text())
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
