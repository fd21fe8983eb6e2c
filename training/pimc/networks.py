"""PIMC networks: recurrence-plot CNN, image-patch CNN, raw-series 1-D CNN baseline, heads; the CLIP pre-training
loss is the kits' one InfoNCE (common/losses.py) with a learnt scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.losses import info_nce

EMBED = 64


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RPEncoder(nn.Module):
    """(N, C, S, S) recurrence plots -> (N, EMBED). Three conv stages with pooling, then global average."""

    def __init__(self, channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(channels, width), nn.MaxPool2d(2),
            _conv(width, 2 * width), nn.MaxPool2d(2),
            _conv(2 * width, 4 * width), nn.MaxPool2d(2),
            _conv(4 * width, EMBED), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchEncoder(nn.Module):
    """(N, B, P, P) S2 patch around the pixel -> (N, EMBED)."""

    def __init__(self, bands: int = 13, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(bands, width), _conv(width, width), nn.MaxPool2d(2),
            _conv(width, EMBED), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SeriesCNN(nn.Module):
    """Baseline on the raw resampled series (N, C, S) -> (N, EMBED): sees absolute levels, which plots drop."""

    def __init__(self, channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.MaxPool1d(2),
            nn.Conv1d(width, EMBED, 3, padding=1), nn.BatchNorm1d(EMBED), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def projection() -> nn.Module:
    return nn.Sequential(nn.Linear(EMBED, EMBED), nn.ReLU(inplace=True), nn.Linear(EMBED, 32))


class PIMC(nn.Module):
    """Dual encoder trained CLIP-style: plot embedding vs patch embedding of the same pixel."""

    def __init__(self, channels: int = 1, bands: int = 13) -> None:
        super().__init__()
        self.rp = RPEncoder(channels)
        self.patch = PatchEncoder(bands)
        self.rp_head, self.patch_head = projection(), projection()
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1/0.07), CLIP's initial temperature

    def loss(self, rp: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        a = F.normalize(self.rp_head(self.rp(rp)), dim=1)
        b = F.normalize(self.patch_head(self.patch(patch)), dim=1)
        return info_nce(a, b, 1 / self.logit_scale.clamp(max=4.6).exp())  # learnt CLIP scale = 1 / t


class Classifier(nn.Module):
    """Encoder + linear head; outputs logits (training) or probabilities (`softmax=True`, for export)."""

    def __init__(self, encoder: nn.Module, n_classes: int, softmax: bool = False) -> None:
        super().__init__()
        self.encoder, self.head, self.softmax = encoder, nn.Linear(EMBED, n_classes), softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.encoder(x))
        return logits.softmax(dim=1) if self.softmax else logits


class Forecaster(nn.Module):
    """Encoder + head predicting the next values as offsets from the last observed value (persistence + Δ)."""

    def __init__(self, encoder: nn.Module, horizon: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.Linear(EMBED + 1, EMBED), nn.ReLU(inplace=True), nn.Linear(EMBED, horizon)
        )

    def forward(self, x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([self.encoder(x), last[:, None]], dim=1)
        return last[:, None] + self.head(feats)
