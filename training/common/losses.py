"""Losses of every kit: segmentation (weighted cross-entropy ignoring label -1, soft Dice on water) and the
one contrastive family (symmetric InfoNCE, CLIP-style, and SimCLR's NT-Xent).

The contrastive losses work on the global batch under DDP: embeddings are all-gathered with gradients, so
every rank sees the same negatives and computes the same loss value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather
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


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float | torch.Tensor = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE: row i of z1 and row i of z2 are positives, the other rows negatives.

    mean of CE(sim(z1, z2) / t, diag) and CE(sim(z2, z1) / t, diag), cosine similarity. `temperature` may be
    a tensor (a learnt CLIP scale s gives t = 1 / s).
    """
    z1, z2 = F.normalize(gather(z1), dim=1), F.normalize(gather(z2), dim=1)
    logits = z1 @ z2.t() / temperature
    target = torch.arange(z1.shape[0], device=z1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def nt_xent(za: torch.Tensor, zb: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR NT-Xent over 2N views: each view's positive is its twin, the other 2N-2 views are negatives."""
    z = F.normalize(torch.cat([gather(za), gather(zb)], dim=0), dim=1)
    n = z.shape[0] // 2
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)
