"""The one ONNX exporter of the kits: TorchScript export, IR capped for older runtimes, the model card
written into the file, and an ONNX Runtime vs torch parity check that removes the file when it fails.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ...models.card import ModelCard, write_card

OPSET = 17
PARITY_TOL = 1e-4
MAX_IR_VERSION = 10  # ONNX Runtime builds in the field (older QGIS installs) read IR <= 10 with opset 17
OUTPUT = "probs"

Shapes = dict[str, tuple[int, ...]]  # input name -> tensor shape


class ParityError(RuntimeError):
    """ONNX Runtime and torch disagree on the exported graph."""


class ProbsNet(torch.nn.Module):
    """The exported graph: a network's logits -> softmax over classes (the runtime expects probabilities)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if hasattr(self.net, "probabilities"):  # a network that computes them more cheaply than a softmax
            return self.net.probabilities(*inputs)
        return torch.softmax(self.net(*inputs), dim=1)


def parity(
    path: str | Path, model: torch.nn.Module, checks: list[Shapes], seed: int = 0, output: str = OUTPUT
) -> float:
    """Max |ORT - torch| over random inputs of the given shapes (covering dynamic batch and size)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shapes in checks:
        xs = {name: torch.randn(shape, generator=gen) * 1.5 for name, shape in shapes.items()}
        with torch.no_grad():
            ref = model(*xs.values()).numpy()
        got = sess.run([output], {name: x.numpy() for name, x in xs.items()})[0]
        if got.shape != ref.shape:
            raise ParityError(f"ONNX output shape {got.shape} != torch {ref.shape} for inputs {shapes}")
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


def export_onnx(
    model: torch.nn.Module,
    card: ModelCard,
    path: str | Path,
    example: Shapes,
    dynamic: dict[str, dict[int, str]],
    checks: list[Shapes],
    output: str = OUTPUT,
) -> float:
    """Write `model` (already ending in probabilities, output named "probs") to `path` with `card`.

    `example` gives each input's name and tracing shape (in the model's argument order), `dynamic` the
    symbolic axes of every input and of the output, `checks` the input shapes the parity check runs;
    `output` renames the output (a feature extractor's is "features", not probabilities).
    Returns the parity diff; raises ParityError (and removes the file, so a broken model can never be
    picked up by the runtime) when ORT and torch differ by PARITY_TOL or more.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    args = tuple(torch.zeros(shape) for shape in example.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "legacy exporter": chosen on purpose (one self-contained file)
        torch.onnx.export(
            model, args, str(path), opset_version=OPSET, input_names=list(example), output_names=[output],
            dynamic_axes=dynamic, dynamo=False,
        )  # fmt: skip
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))
    onnx.checker.check_model(str(path))
    write_card(path, card)
    try:
        diff = parity(path, model, checks, output=output)
    except ParityError:
        path.unlink(missing_ok=True)
        raise
    if not diff < PARITY_TOL:
        path.unlink(missing_ok=True)
        raise ParityError(f"ONNX Runtime differs from torch by {diff:.2e} (limit {PARITY_TOL:.0e})")
    return diff


def export_s1_net(net: torch.nn.Module, card: ModelCard, path: str | Path, tile: int = 256) -> float:
    """Write a single-input S1 network (logits, 2 bands) wrapped in softmax to `path` with `card`; dynamic
    N/H/W. Returns the parity diff; raises ParityError (file removed) when ONNX Runtime and torch disagree.

    The flood kit's U-Net and the fine-tune kit's networks (U-Net or SegNet) go out through this one call.
    """
    axes = {0: "n", 2: "h", 3: "w"}
    return export_onnx(
        ProbsNet(net), card, path, example={"s1": (1, 2, tile, tile)}, dynamic={"s1": axes, "probs": axes},
        checks=[{"s1": (2, 2, tile, tile)}, {"s1": (1, 2, 96, 160)}],
    )  # fmt: skip
