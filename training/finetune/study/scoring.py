"""Scoring of the fine-tuning study: water IoU of a model on a chip's unlabelled checkerboard blocks (run by
the runtime's own map-floods job), and the tables the page is built from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from ....models.execution import Execution
from ....models.pipeline import map_floods
from ...common.data_root import data_root
from ...common.figures import round_score
from ...common.metrics import confusion, counts_iou

BLOCK = 128


def blocks(shape: tuple[int, int], block: int = BLOCK) -> np.ndarray:
    """True on the checkerboard blocks where polygons may be drawn; scoring uses the others."""
    rows, cols = np.indices(shape) // block
    return (rows + cols) % 2 == 0


def chip_paths(chip: str) -> tuple[Path, Path]:
    root = data_root() / "sen1floods11"
    return root / "S1Hand" / f"{chip}_S1Hand.tif", root / "LabelHand" / f"{chip}_LabelHand.tif"


def score_model(model: str | Path, chip: str, folder: Path) -> dict[str, Any]:
    """Water IoU of a model on the chip's scoring blocks, run by the runtime's map-floods job."""
    s1, label_path = chip_paths(chip)
    out = folder / f"map_{Path(str(model)).stem}_{chip}.tif"
    map_floods(s1, out, model=str(model), config=Execution(provider="cpu", threads=1))
    with rasterio.open(out) as ds:
        pred = ds.read(1)
    with rasterio.open(label_path) as ds:
        label = ds.read(1)
    counts = confusion(pred == 1, label, (~blocks(label.shape)) & (pred != 255))
    out.unlink()
    return {
        "iou": round_score(counts.iou),
        "f1": round_score(counts.f1),
        "tp": counts.tp,
        "fp": counts.fp,
        "fn": counts.fn,
    }


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """chip -> init -> polygon count -> lists over seeds: iou, s (seconds), fp, fn."""
    table: dict[str, Any] = {}
    for run in results["runs"].values():
        if "refused" in run:
            continue
        cell = table.setdefault(run["chip"], {}).setdefault(run["init"], {})
        cell = cell.setdefault(run["polygons"], {"iou": [], "s": [], "fp": [], "fn": []})
        cell["iou"].append(counts_iou(run["score"]))
        cell["s"].append(run["seconds_finetune"])
        cell["fp"].append(run["score"]["fp"])
        cell["fn"].append(run["score"]["fn"])
    return table


def recipe_name(init: str) -> str:
    """'base+distill=1.0+lr=0.0001' -> 'distill=1.0, lr=0.0001'; no override -> 'as before (PR default)'."""
    tag = init.partition("+")[2]
    return tag.replace("+", ", ") if tag else "original recipe"


def recipe_table(dev: dict[str, Any]) -> dict[str, Any]:
    """recipe -> chip -> {"iou", "fp", "fn"} lists over seeds, and recipe -> refused count (base start only)."""
    table: dict[str, Any] = {}
    for run in dev["runs"].values():
        if run["init"].partition("+")[0] != "base":
            continue
        cell = table.setdefault(recipe_name(run["init"]), {"chips": {}, "refused": 0})
        if "refused" in run:
            cell["refused"] += 1
            continue
        c = cell["chips"].setdefault(run["chip"], {"iou": [], "fp": [], "fn": []})
        for k in c:
            c[k].append(run["score"][k])
    return table


def chosen_recipe(table: dict[str, Any]) -> str:
    """The rule fixed before the comparison: highest mean over chips of the mean water IoU over seeds."""
    return max(table, key=lambda r: np.mean([np.mean(c["iou"]) for c in table[r]["chips"].values()]))
