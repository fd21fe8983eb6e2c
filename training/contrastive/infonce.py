"""Contrastive losses: symmetric cross-modal InfoNCE (CLIP-style) and SimCLR's NT-Xent.

Both work on the global batch under DDP: embeddings are all-gathered with gradients, so every rank
sees the same negatives and computes the same loss value.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice.

    Every rank computes the same loss on the global batch; with DDP averaging parameter gradients,
    the update equals the single-process gradient of that global loss.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, z.contiguous())
        ctx.n, ctx.rank = z.shape[0], dist.get_rank()
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather(z: torch.Tensor) -> torch.Tensor:
    """Concatenate `z` from every rank in rank order, keeping the gradient of the local slice."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return _GatherWithGrad.apply(z)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE: row i of z1 (S1) and row i of z2 (S2) are positives, other rows negatives.

    mean of CE(sim(z1, z2) / t, diag) and CE(sim(z2, z1) / t, diag), cosine similarity.
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
