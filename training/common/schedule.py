"""The learning-rate schedule every kit uses: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch

FLOOR = 0.05  # the rate ends at 5 % of its base value


def warmup_cosine(step: int, warmup: int, total: int, floor: float = FLOOR) -> float:
    """Factor on the base rate at `step` (0-based) of a `total`-step run."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def scheduler(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping `warmup_cosine` once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, warmup, total))
