"""Projection heads and the dual encoder of contrastive pre-training, on the shared ResNet encoder."""

from __future__ import annotations

import torch
from torch import nn

from ..common.networks.resnet import ResNetEncoder


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
