"""Export a SegNet (one or two inputs) through the kits' one exporter (common/export.py)."""

from __future__ import annotations

from pathlib import Path

from ...models.card import ModelCard
from ..common.export import ProbsNet, export_onnx
from ..common.networks.segnet import INPUT_CHANNELS, SegNet


def export_segnet(net: SegNet, card: ModelCard, path: str | Path, tile: int = 256) -> float:
    """Write `net` + softmax to `path` with `card`; returns the parity diff (ParityError, file removed, if off)."""
    names = [s.name for s in card.inputs]
    if names != net.names:
        raise ValueError(f"card inputs {names} do not match the network inputs {net.names}")
    axes = {0: "n", 2: "h", 3: "w"}

    def shapes(n: int, h: int, w: int) -> dict[str, tuple[int, ...]]:
        return {k: (n, INPUT_CHANNELS[k], h, w) for k in names}

    return export_onnx(
        ProbsNet(net.eval()), card, path, example=shapes(1, tile, tile),
        dynamic={k: axes for k in [*names, "probs"]}, checks=[shapes(2, tile, tile), shapes(1, 96, 160)],
    )  # fmt: skip
