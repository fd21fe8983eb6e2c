"""A VH-threshold-anchored network: the water logit is a learned VH threshold plus a small-context residual.

logit(water) = slope * (threshold_db - VH_dB) + f(x), where f is a few 3x3 convolutions (receptive field
2 * sum of dilations + 1 pixels). VH_dB is recovered inside the graph from the normalised input with the card's own
mean/std, so the exported ONNX takes exactly the runtime's input. At initialisation f = 0 and the network is
the rule VH < -20 dB; training moves it only where the data say so. The small receptive field makes the map
independent of where tiles fall and of whether a tile shows a shore (an all-water tile is still water).
"""

from __future__ import annotations

import torch
from torch import nn

VH = 1


class ThresholdResidual(nn.Module):
    """(N, 2, H, W) normalised [VV, VH] -> logits (N, 2, H, W) for [dry, water]."""

    def __init__(
        self, mean: list[float], std: list[float], width: int = 16, layers: int = 3, kernel: int = 3,
        dilations: list[int] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("vh_mean", torch.tensor(float(mean[VH])))
        self.register_buffer("vh_std", torch.tensor(float(std[VH])))
        self.threshold = nn.Parameter(torch.tensor(-20.0))
        self.slope = nn.Parameter(torch.tensor(0.5))  # logit per dB
        mods: list[nn.Module] = []
        cin = 2
        for d in dilations or [1] * layers:
            mods += [
                nn.Conv2d(cin, width, kernel, padding=d * (kernel // 2), dilation=d),
                nn.ReLU(inplace=True),
            ]
            cin = width
        self.body = nn.Sequential(*mods)
        self.head = nn.Conv2d(cin, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vh_db = x[:, VH : VH + 1] * self.vh_std + self.vh_mean
        z = self.slope * (self.threshold - vh_db) + self.head(self.body(x))
        return torch.cat([-0.5 * z, 0.5 * z], dim=1)  # softmax of these = sigmoid(z) for water


def receptive_field(net: ThresholdResidual) -> int:
    convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
    return 1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in convs)
