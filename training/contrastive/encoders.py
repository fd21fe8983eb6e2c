"""CPU-sized ResNet-style encoders with a feature pyramid, projection heads and the dual encoder."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """He et al. 2016 basic residual block (two 3x3 convs), with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.skip(x))


class ResNetEncoder(nn.Module):
    """Stem + one residual block per stage; returns features at strides 1, 2, 4 (.. 2**(stages-1)).

    Input H and W must be multiples of 2**(stages-1). Sized for a CPU: about 60 k parameters at width 16.
    """

    def __init__(self, in_ch: int, width: int = 16, stages: int = 3) -> None:
        super().__init__()
        self.in_ch = in_ch
        self.channels = [width * 2**i for i in range(stages)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.stages = nn.ModuleList([BasicBlock(width, width, 1)])
        self.stages.extend(BasicBlock(self.channels[i], self.channels[i + 1], 2) for i in range(stages - 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    @property
    def out_dim(self) -> int:
        return self.channels[-1]


class ProjectionHead(nn.Module):
    """Global average pool of the deepest features, then a 2-layer MLP (SimCLR's g(.))."""

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.mlp(feats[-1].mean(dim=(2, 3)))


class Embedder(nn.Module):
    """Encoder + projection head of one modality: image -> embedding (N, D)."""

    def __init__(self, in_ch: int, width: int, proj_dim: int) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_ch, width)
        self.head = ProjectionHead(self.encoder.out_dim, 2 * self.encoder.out_dim, proj_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class DualEncoder(nn.Module):
    """One embedder per sensor (S1: 2 channels, S2: 13); the pair is pulled together by cross-modal InfoNCE."""

    def __init__(self, width: int = 16, proj_dim: int = 32, s1_ch: int = 2, s2_ch: int = 13) -> None:
        super().__init__()
        self.s1 = Embedder(s1_ch, width, proj_dim)
        self.s2 = Embedder(s2_ch, width, proj_dim)

    def forward(self, s1: torch.Tensor, s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.s1(s1), self.s2(s2)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
