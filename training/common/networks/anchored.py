"""One fast flood network: a learned VH threshold, a 3x3 local branch and a low-resolution context branch.

water logit = slope * (threshold_db - VH_dB) + head(local(x) ++ up(context(x)))

Why this shape: the default ensemble averages a VH-threshold-anchored 7x7 network (robust where the rule is
right, e.g. Bolivia) and a U-Net (context: shores, shadows, whole-scene level). Both run every layer at full
resolution, which is what costs time on a CPU. Here only one 3x3 convolution (2 -> `width` channels) and
1x1 convolutions run at full resolution; the context runs at 1/2, 1/4 and 1/8 of it and reaches full
resolution as a few channels through one bilinear upsampling. The anchor keeps the rule's behaviour where
the residual has nothing to say (at initialisation the head is zero and the network IS VH < -20 dB), and
VH_dB is recovered inside the graph from the card's mean/std, so the exported ONNX takes the runtime's input.

No BatchNorm: the ONNX file then holds the torch parameters under their own names, so a fine-tune can load
them back exactly (training/finetune/base_weights.py rebuilds the network from the card's `network` entry).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

VH = 1


def _down(cin: int, cout: int) -> nn.Sequential:
    """Half the resolution, then one 3x3 layer at the new one."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class AnchoredContext(nn.Module):
    """(N, 2, H, W) normalised [VV, VH] -> logits (N, 2, H, W) for [dry, water]; any H, W."""

    def __init__(
        self, mean: list[float], std: list[float], width: int = 8, context: list[int] | None = None,
        up_channels: int = 4,
    ) -> None:  # fmt: skip
        super().__init__()
        context = list(context or [16, 24, 32])
        self.config = {"width": width, "context": context, "up_channels": up_channels}
        self.register_buffer("vh_mean", torch.tensor(float(mean[VH])))
        self.register_buffer("vh_std", torch.tensor(float(std[VH])))
        self.threshold = nn.Parameter(torch.tensor(-20.0))
        self.slope = nn.Parameter(torch.tensor(0.5))  # logit per dB
        self.local = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.ReLU(inplace=True))
        chans = [2, *context]
        self.down = nn.ModuleList(_down(chans[i], chans[i + 1]) for i in range(len(context)))
        # coarse -> fine merge: the finer level's features ++ the upsampled coarser ones, a 1x1 mix
        self.merge = nn.ModuleList(
            nn.Conv2d(context[i] + context[i + 1], context[i], 1) for i in reversed(range(len(context) - 1))
        )
        self.to_full = nn.Conv2d(context[0], up_channels, 1)  # few channels cross to full resolution
        self.fuse = nn.Conv2d(width + up_channels, width, 1)
        self.head = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The feature layers (frozen in a fine-tune's first phase); the rest is the decoder."""
        return [*self.local.parameters(), *self.down.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        h = x
        for block in self.down:
            h = block(h)
            feats.append(h)
        h = feats.pop()
        for merge in self.merge:
            fine = feats.pop()
            up = F.interpolate(h, size=fine.shape[-2:], mode="bilinear", align_corners=False)
            h = F.relu(merge(torch.cat([fine, up], dim=1)))
        ctx = F.interpolate(self.to_full(h), size=x.shape[-2:], mode="bilinear", align_corners=False)
        r = self.head(F.relu(self.fuse(torch.cat([self.local(x), ctx], dim=1))))
        vh_db = x[:, VH : VH + 1] * self.vh_std + self.vh_mean
        z = self.slope * (self.threshold - vh_db) + r
        return torch.cat([-0.5 * z, 0.5 * z], dim=1)  # softmax of these = sigmoid(z) for water


def network_entry(net: AnchoredContext) -> dict[str, Any]:
    """The card's `training.network` entry from which base_weights rebuilds this network."""
    return {"class": "AnchoredContext", **net.config}


def from_entry(entry: dict[str, Any], mean: list[float], std: list[float]) -> AnchoredContext:
    """The network a card's `training.network` entry describes (weights still to be loaded)."""
    if entry.get("class") != "AnchoredContext":
        raise ValueError(f"unknown network class {entry.get('class')!r}")
    return AnchoredContext(mean, std, width=int(entry["width"]), context=[int(c) for c in entry["context"]],
                           up_channels=int(entry["up_channels"]))  # fmt: skip
