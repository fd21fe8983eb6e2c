"""The runner of the `finetune` job of the table (models/jobs.py): its keywords to the training kit's call.

Fine-tuning lives in training/finetune/job.py and needs torch, so it is imported only when the job runs;
without torch the job stops with one line saying what to install. The runtime (models/) never imports
training/, which is why this adapter sits beside the CLI rather than in models/.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .models.errors import ContrasatError, InputError
from .models.execution import Execution
from .models.registry import FINETUNE_BASE


@dataclass
class FinetuneOutcome:
    """A finished fine-tune as every job's result reads: summary, text lines, exit code."""

    result: Any  # training.finetune.job.FinetuneResult

    exit_code = 0

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict()

    def text_lines(self) -> list[str]:
        result = self.result
        labels = result.card.training["labels"]
        lines = [f"wrote {result.output} (fine-tuned from {result.card.training['base_model']['name']}, "
                 f"{result.seconds:.0f} s, kept step {result.best_step})"]  # fmt: skip
        if result.curve:
            lines.append(f"wrote {result.curve}")
        for part in ("train", "heldout"):
            counts = ", ".join(
                f"{k}: {v['polygons']} polygons / {v['pixels']} px" for k, v in labels[part].items()
            )
            lines.append(f"  {part:<8} {counts}")
        for model, iou in self.to_dict()["heldout_water_iou"].items():
            lines.append(f"  held-back water IoU {model:<10} {'n/a' if iou is None else f'{iou:.3f}'}")
        return lines + [f"note: {note}" for note in result.notes]


def finetune(
    raster: Sequence[str],
    labels: str,
    out: str,
    *,
    field: str = "class",
    base: str = FINETUNE_BASE,
    steps: int = 200,
    holdout: float = 0.25,
    edge: int = 1,
    frozen: bool = False,
    distill: float | None = None,
    prior: str | None = None,
    seed: int = 0,
    threads: int = 1,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,  # noqa: ARG001 - cancelled by ending its process
) -> FinetuneOutcome:
    """Fine-tune `base` on the labels over `raster`; writes the model `out` with its card and curve."""
    if importlib.util.find_spec("torch") is None:
        raise ContrasatError("contrasat finetune needs torch: pip install contrasat[train]")
    from .training.finetune.job import FinetuneConfig, run_finetune

    if not 0 <= holdout < 1:  # also refuses nan
        raise InputError(f"--holdout must be from 0 to below 1 (a share of the polygons), not {holdout}")
    if distill is not None and not 0 <= distill < math.inf:
        raise InputError(f"--distill must be 0 or more, not {distill}")

    capped, notes = Execution(threads=threads).checked()  # the mapping jobs' rule: at most one per core
    cfg = FinetuneConfig(
        steps=steps, unfreeze=not frozen, holdout=holdout, edge=edge, seed=seed, threads=int(capped.threads)
    )
    if distill is not None:
        cfg.distill = distill
    if prior is not None:
        cfg.prior = prior
    result = run_finetune(base, list(raster), labels, out, field, cfg, progress=progress)
    result.notes[:0] = notes  # Notes keep their level: the plugin lists warnings apart
    return FinetuneOutcome(result)
