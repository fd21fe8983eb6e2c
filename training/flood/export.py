"""Export the flood U-Net: softmax output, dynamic N/H/W, through the kits' one exporter (common/export.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...models.card import ModelCard
from ..common.export import OPSET, ParityError, ProbsNet, export_onnx

__all__ = ["OPSET", "ParityError", "export_unet"]


def export_unet(net: torch.nn.Module, card: ModelCard, path: str | Path, tile: int = 256) -> float:
    """Write `net` (logits) wrapped in softmax to `path` with `card`; returns the parity diff.

    Raises ParityError (file removed) when ONNX Runtime and torch disagree.
    """
    axes = {0: "n", 2: "h", 3: "w"}
    return export_onnx(
        ProbsNet(net), card, path, example={"s1": (1, 2, tile, tile)}, dynamic={"s1": axes, "probs": axes},
        checks=[{"s1": (2, 2, tile, tile)}, {"s1": (1, 2, 96, 160)}],
    )  # fmt: skip
