"""Process-group set-up that lets one script run single-process or under torchrun, unchanged, and the
all-gather with gradients the contrastive losses use.

torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; then gloo on CPU, nccl (+ AMP in the loop) on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"


def setup() -> Runtime:
    """Join the torchrun process group when launched by torchrun; otherwise a single CPU/GPU process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    device = torch.device("cpu")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return Runtime(rank, dist.get_world_size() if dist.is_initialized() else 1, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    """DistributedDataParallel when several processes run (gradients averaged over ranks)."""
    model = model.to(rt.device)
    if rt.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[rt.device.index] if rt.amp else None)
    return model


def sync_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BN running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after the last step each rank still holds
    the statistics of its own last batch; this makes every rank end with the same complete model.
    """
    if dist.is_initialized() and dist.get_world_size() > 1:
        for buf in model.buffers():
            dist.broadcast(buf.data, src=0)


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
