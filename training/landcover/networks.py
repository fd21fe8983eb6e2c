"""The per-pixel network: features (bands + indices, computed inside) through 1x1 convolutions."""

from __future__ import annotations

import torch

from .data import N_CLASSES
from .features import N_FEATURES, torch_features


class PixelNet(torch.nn.Module):
    """(N, 13, H, W) card-normalised S2 -> (N, 10, H, W) logits; receptive field one pixel.

    Class 0 (no data) is never a training target; its logit is learnt down like any absent class.
    """

    def __init__(self, mean: list[float], std: list[float], clip: tuple[float, float], hidden: int = 64,
                 layers: int = 2) -> None:  # fmt: skip
        super().__init__()
        self.card_mean, self.card_std = list(mean), list(std)
        self.features = torch_features()(mean, std, clip)
        blocks: list[torch.nn.Module] = []
        width = N_FEATURES
        for _ in range(layers):
            blocks += [torch.nn.Conv2d(width, hidden, 1), torch.nn.ReLU()]
            width = hidden
        blocks.append(torch.nn.Conv2d(width, N_CLASSES, 1))
        self.head = torch.nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
