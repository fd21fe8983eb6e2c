"""A CPU-sized ResNet-style encoder with a feature pyramid (the contrastive kit pre-trains it, SegNet reads it)."""

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
