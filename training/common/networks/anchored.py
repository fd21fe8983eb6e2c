"""One fast flood network: a learned VH threshold, a 3x3 local branch and a low-resolution context branch.

water logit = slope * (threshold_db - VH_dB) + head(local(x) ++ up(context(x)))

Why this shape: the default ensemble averages a VH-threshold-anchored 7x7 network (robust where the rule is
right, e.g. Bolivia) and a U-Net (context: shores, shadows, whole-scene level). Both run every layer at full
resolution, which is what costs time on a CPU. Here only one 3x3 convolution (2 -> `width` channels) and
1x1 convolutions run at full resolution; the context runs at 1/2, 1/4 and 1/8 of it and reaches full
resolution as a few channels through one bilinear upsampling. The anchor keeps the rule's behaviour where
the residual has nothing to say (at initialisation the head is zero and the network IS VH < -20 dB), and
VH_dB is recovered inside the graph from the card's mean/std, so the exported ONNX takes the runtime's input.

`pair=True` keeps the ensemble's structure inside the one graph: two heads on the shared features, an
anchored head on the full-resolution branch alone (the VH-anchored member, small receptive field) and a
context head without the anchor (the U-Net member), each trained on the labels as its own member
(`member_logits`), and the output is the mean of their p(water), as the ensemble's.

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
        up_channels: int = 4, local_layers: int = 1, pair: bool = False, fuse: bool = True,
        anchor_context: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        context = list(context or [16, 24, 32])
        self.config = {"width": width, "context": context, "up_channels": up_channels,
                       "local_layers": local_layers, "pair": pair, "fuse": fuse,
                       "anchor_context": anchor_context}  # fmt: skip
        self.register_buffer("vh_mean", torch.tensor(float(mean[VH])))
        self.register_buffer("vh_std", torch.tensor(float(std[VH])))
        self.threshold = nn.Parameter(torch.tensor(-20.0))
        self.slope = nn.Parameter(torch.tensor(0.5))  # logit per dB
        local: list[nn.Module] = []
        for i in range(local_layers):
            local += [nn.Conv2d(2 if i == 0 else width, width, 3, padding=1), nn.ReLU(inplace=True)]
        self.local = nn.Sequential(*local)
        chans = [2, *context]
        self.down = nn.ModuleList(_down(chans[i], chans[i + 1]) for i in range(len(context)))
        # coarse -> fine merge: the finer level's features ++ the upsampled coarser ones, a 1x1 mix
        self.merge = nn.ModuleList(
            nn.Conv2d(context[i] + context[i + 1], context[i], 1) for i in reversed(range(len(context) - 1))
        )
        if fuse:  # few channels cross to full resolution and mix with the local features there
            self.to_full = nn.Conv2d(context[0], up_channels, 1)
            self.fuse = nn.Conv2d(width + up_channels, width, 1)
        else:  # the context adds one logit, upsampled (cheapest at full resolution); with `anchor_context`
            # a second one for the anchored member, so it too can tell frozen land from water by context
            self.to_full = nn.Conv2d(context[0], 2 if pair and anchor_context else 1, 1)
            nn.init.zeros_(self.to_full.weight)
            nn.init.zeros_(self.to_full.bias)
        self.head = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if pair:  # the anchored member's head reads the full-resolution branch only
            self.anchor_head = nn.Conv2d(width, 1, 1)
            nn.init.zeros_(self.anchor_head.weight)
            nn.init.zeros_(self.anchor_head.bias)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The feature layers (frozen in a fine-tune's first phase); the rest is the decoder."""
        return [*self.local.parameters(), *self.down.parameters()]

    def _logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Water-minus-dry logit(s) z: one, or [anchored member, context member] when `pair`."""
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
        local = self.local(x)
        if self.config["fuse"]:
            r = self.head(F.relu(self.fuse(torch.cat([local, ctx], dim=1))))
        else:
            r = self.head(local) + ctx[:, :1]
        # written so that no term is all-constant: the exporter would fold it, and the file would no longer
        # hold `threshold` and `slope` under their names for a fine-tune to read back
        vh_db = x[:, VH : VH + 1] * self.vh_std + self.vh_mean
        anchor = self.slope * (self.threshold - vh_db)
        if not self.config["pair"]:
            return [anchor + r]
        a = anchor + self.anchor_head(local)
        return [a + ctx[:, 1:2] if ctx.shape[1] == 2 and not self.config["fuse"] else a, r]

    def member_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each member's [dry, water] logits (training: each member learns the labels on its own)."""
        return [torch.cat([-0.5 * z, 0.5 * z], dim=1) for z in self._logits(x)]

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """[p(dry), p(water)] = softmax of `forward`, without a softmax over channels: ONNX Runtime runs a
        Softmax on axis 1 through a transpose, a fifth of this network's time (the exporter uses this)."""
        zs = self._logits(x)
        p = torch.sigmoid(zs[0])
        for z in zs[1:]:
            p = p + torch.sigmoid(z)
        p = p * (1.0 / len(zs)) if len(zs) > 1 else p
        return torch.cat([1 - p, p], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zs = self._logits(x)
        if len(zs) == 1:
            return torch.cat([-0.5 * zs[0], 0.5 * zs[0]], dim=1)  # softmax of these = sigmoid(z) for water
        p = torch.stack([torch.sigmoid(z) for z in zs]).mean(0).clamp(1e-6, 1 - 1e-6)
        z = torch.log(p) - torch.log1p(-p)  # the ensemble's mean p(water), as logits [0, z]
        return torch.cat([torch.zeros_like(z), z], dim=1)


def network_entry(net: AnchoredContext) -> dict[str, Any]:
    """The card's `training.network` entry from which base_weights rebuilds this network."""
    return {"class": "AnchoredContext", **net.config}


def from_entry(entry: dict[str, Any], mean: list[float], std: list[float]) -> AnchoredContext:
    """The network a card's `training.network` entry describes (weights still to be loaded)."""
    if entry.get("class") != "AnchoredContext":
        raise ValueError(f"unknown network class {entry.get('class')!r}")
    return AnchoredContext(mean, std, width=int(entry["width"]), context=[int(c) for c in entry["context"]],
                           up_channels=int(entry["up_channels"]), local_layers=int(entry.get("local_layers", 1)),
                           pair=bool(entry.get("pair", False)), fuse=bool(entry.get("fuse", True)),
                           anchor_context=bool(entry.get("anchor_context", False)))  # fmt: skip
