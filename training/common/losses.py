"""Segmentation losses: class-weighted cross-entropy ignoring label -1, plus soft Dice on water."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .metrics import IGNORE


def water_weight(water_share: float, cap: float = 5.0) -> float:
    """Water-class CE weight from the training water share: sqrt of the inverse ratio, capped.

    The square root and the cap keep the chips where water is rare from making the model trigger-happy.
    """
    share = min(max(water_share, 1e-3), 0.999)
    return float(min(((1 - share) / share) ** 0.5, cap))


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of the water class over all valid pixels of the batch (stable when a crop has none)."""
    valid = (target != IGNORE).float()
    p = torch.softmax(logits, dim=1)[:, 1] * valid
    t = (target == 1).float() * valid
    inter = (p * t).sum()
    return 1 - (2 * inter + 1) / (p.sum() + t.sum() + 1)


def flood_loss(logits: torch.Tensor, target: torch.Tensor, weight_water: float, dice: float) -> torch.Tensor:
    """Weighted CE (ignoring -1) + `dice` x Dice. Returns 0 (with grad) if a batch has no valid pixel."""
    if not bool((target != IGNORE).any()):
        return logits.sum() * 0.0
    w = torch.tensor([1.0, weight_water], dtype=logits.dtype, device=logits.device)
    loss = F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE)
    return loss + dice * dice_loss(logits, target) if dice > 0 else loss
