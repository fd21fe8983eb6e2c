"""Segmentation networks on the pre-trained encoders: one encoder (S1 or S2) or S1+S2 fusion.

A small U-Net-style decoder reads the encoder pyramid (strides 1, 2, 4); fusion concatenates the two
encoders' features level by level. Frozen = encoders fixed in eval mode (a decoder probe).
"""

from __future__ import annotations

import torch
from torch import nn

from .resnet import ResNetEncoder

INPUT_CHANNELS = {"s1": 2, "s2": 13}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class Decoder(nn.Module):
    """Transposed-conv upsampling with skip connections from a feature pyramid to per-pixel logits."""

    def __init__(self, channels: list[int], classes: int) -> None:
        super().__init__()
        levels = len(channels)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2) for i in reversed(range(levels - 1))
        )
        self.fuse = nn.ModuleList(_block(2 * channels[i], channels[i]) for i in reversed(range(levels - 1)))
        self.head = nn.Conv2d(channels[0], classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for k, (up, fuse) in enumerate(zip(self.up, self.fuse, strict=True)):
            x = fuse(torch.cat([up(x), feats[-2 - k]], dim=1))
        return self.head(x)


class SegNet(nn.Module):
    """Encoders named by input ('s1', 's2') + decoder; forward takes the inputs in `names` order."""

    def __init__(self, names: list[str], classes: int, width: int = 16) -> None:
        super().__init__()
        self.names = list(names)
        self.encoders = nn.ModuleDict({n: ResNetEncoder(INPUT_CHANNELS[n], width) for n in self.names})
        chans = [c * len(self.names) for c in self.encoders[self.names[0]].channels]
        self.decoder = Decoder(chans, classes)
        self.frozen = False

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        pyramids = [self.encoders[n](x) for n, x in zip(self.names, inputs, strict=True)]
        feats = [torch.cat(level, dim=1) for level in zip(*pyramids, strict=True)]
        return self.decoder(feats)

    def freeze_encoders(self) -> None:
        self.frozen = True
        for p in self.encoders.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> SegNet:
        super().train(mode)
        if self.frozen:
            self.encoders.eval()  # frozen BN keeps its pre-trained statistics
        return self
