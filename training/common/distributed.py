"""Process-group set-up that lets one script run single-process or under torchrun, unchanged.

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
