"""Export a SegNet (one or two inputs) to ONNX with its card and an ORT-vs-torch parity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ...models.card import ModelCard, write_card
from ..flood.export import OPSET, PARITY_TOL, ParityError
from .segment import INPUT_CHANNELS, ProbsNet, SegNet

MAX_IR_VERSION = 10  # ONNX Runtime builds in the field read IR <= 10 with opset 17


def _export(model: ProbsNet, names: list[str], tile: int, path: Path) -> None:
    example = tuple(torch.zeros(1, INPUT_CHANNELS[n], tile, tile) for n in names)
    axes = {n: {0: "n", 2: "h", 3: "w"} for n in [*names, "probs"]}
    torch.onnx.export(
        model, example, str(path), opset_version=OPSET, input_names=names, output_names=["probs"],
        dynamic_axes=axes, dynamo=False,
    )  # fmt: skip
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))
    onnx.checker.check_model(str(path))


def parity(
    path: Path, model: ProbsNet, names: list[str], shapes: list[tuple[int, int, int]], seed: int = 0
) -> float:
    """Max |ORT - torch| over random inputs of shapes (n, h, w): dynamic batch and tile size."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n, h, w in shapes:
        xs = [torch.randn(n, INPUT_CHANNELS[k], h, w, generator=gen) * 1.5 for k in names]
        with torch.no_grad():
            ref = model(*xs).numpy()
        got = sess.run(["probs"], {k: x.numpy() for k, x in zip(names, xs, strict=True)})[0]
        if got.shape != ref.shape:
            raise ParityError(f"ONNX output {got.shape} != torch {ref.shape}")
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


def export_segnet(net: SegNet, card: ModelCard, path: str | Path, tile: int = 256) -> float:
    """Write `net` + softmax to `path` with `card`; returns the parity diff (file removed if >= tolerance)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = ProbsNet(net.eval()).eval()
    names = [s.name for s in card.inputs]
    if names != net.names:
        raise ValueError(f"card inputs {names} do not match the network inputs {net.names}")
    _export(model, names, tile, path)
    write_card(path, card)
    diff = parity(path, model, names, [(2, tile, tile), (1, 96, 160)])
    if not diff < PARITY_TOL:
        path.unlink(missing_ok=True)
        raise ParityError(f"ONNX Runtime differs from torch by {diff:.2e} (limit {PARITY_TOL:.0e})")
    return diff
