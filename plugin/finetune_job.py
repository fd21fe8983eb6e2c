"""What the dock adds around the fine-tune job of the table (models/jobs.py): which bases to offer, where
the new model goes, and the two maps that follow it.

The job itself (parameters, defaults, command line) is the table's `finetune` row; the dock and Processing
start it through the launcher like every job. torch is imported only by the engine process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import jobs
from .launcher import JobRequest
from .paths import sibling_outputs, unique_output_path

FINETUNE_JOB = jobs.job("finetune").algorithm
FINETUNE_TITLE = "Fine-tune"  # the dock's tab and messages (the table's title is the Processing one)


def finetunable(card: Any) -> bool:
    """Bases worth offering to `contrasat finetune`: single-input Sentinel-1 flood networks trained by
    Contrasat (their card names the training code) or fine-tuned from one; not the fixed VH rule, and not
    VH-anchored residual networks or ensembles (the card's recipe names net "resid" or "ensemble"), which
    the engine cannot read back and would refuse only after the user has drawn labels and pressed Run."""
    single_s1 = card.task == "flood" and len(card.inputs) == 1 and card.inputs[0].sensor == "S1"
    trained = bool(card.training.get("code") or card.training.get("base_model"))
    recipe = card.training.get("recipe")
    anchored = isinstance(recipe, dict) and recipe.get("net") in ("resid", "ensemble")
    return single_s1 and trained and not anchored


def map_requests(request: JobRequest, model: Path) -> list[JobRequest]:
    """Map floods in the first raster of a fine-tune with its base model, then with the new one (two styled
    layers, in the request's output folder)."""
    first = request.primary[0] if isinstance(request.primary, list) else request.primary
    base = Path(request.options["base"])
    folder = request.out_dir or request.out.parent
    maps = []
    for label, kind, path in (
        (f"base {base.stem}", "flood_base", base),
        (f"fine-tuned {model.stem}", "flood_finetuned", model),
    ):
        out = unique_output_path(folder, request.layer_name or first.stem, kind=kind)
        options = {"model": path, "statistics": sibling_outputs(out)["statistics"]}
        name = f"{request.layer_name}, {label}"
        maps.append(JobRequest("map_floods", first, out, options, name, request.settings))
    return maps


def finetune_text(result: dict[str, Any]) -> str:
    """One line for the dock: where the model is and how it scored on the held-back polygons."""
    iou = result.get("heldout_water_iou") or {}
    text = f"Fine-tuned model saved: {result.get('output')}"
    if isinstance(iou, dict) and iou.get("finetuned") is not None:
        base = iou.get("base")
        text += f". Held-back water IoU {iou['finetuned']:.3f}" + (
            f" (base model {base:.3f})" if isinstance(base, int | float) else ""
        )
    return text + ". Mapping the scene with both models…"


def new_model_path(folder: Path, layer_name: str) -> Path:
    """`<folder>/<layer>_finetuned.onnx`, numbered so an earlier model is never overwritten."""
    return unique_output_path(folder, layer_name, suffix=".onnx", kind="finetuned")
