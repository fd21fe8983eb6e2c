"""Export a segmentation network to ONNX (softmax output, dynamic N/H/W), attach its card, check parity."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ...models.card import ModelCard, write_card
from .networks import ProbsModel

PARITY_TOL = 1e-4
OPSET = 17


class ParityError(RuntimeError):
    """ONNX Runtime and torch disagree on the exported graph."""


def _torch_export(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    names = {"input_names": ["s1"], "output_names": ["probs"]}
    axes = {"s1": {0: "n", 2: "h", 3: "w"}, "probs": {0: "n", 2: "h", 3: "w"}}
    try:  # the TorchScript exporter: one self-contained file, no onnxscript rewrite needed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter": chosen on purpose
            torch.onnx.export(
                model, (example,), str(path), opset_version=OPSET, dynamic_axes=axes, dynamo=False, **names
            )
    except (TypeError, RuntimeError, NotImplementedError):
        n, h, w = torch.export.Dim("n"), torch.export.Dim("h"), torch.export.Dim("w")
        shapes = {"s1": {0: n, 2: h, 3: w}}
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=max(OPSET, 18), dynamic_shapes=shapes, **names
        )
        program.save(str(path), external_data=False)


def parity(
    path: Path, model: torch.nn.Module, shapes: list[tuple[int, int, int, int]], seed: int = 0
) -> float:
    """Max |ORT - torch| over random inputs of the given shapes (covers dynamic batch and size)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in shapes:
        x = torch.randn(shape, generator=gen) * 1.5
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(["probs"], {"s1": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ParityError(f"ONNX output shape {got.shape} != torch {ref.shape} for input {shape}")
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


def export_onnx(
    net: torch.nn.Module,
    card: ModelCard,
    path: str | Path,
    tile: int = 256,
    check_shapes: list[tuple[int, int, int, int]] | None = None,
) -> float:
    """Write `net` (logits) wrapped in softmax to `path` with `card`; returns the parity diff.

    Raises ParityError when ORT and torch differ by PARITY_TOL or more; the file is removed then so a
    broken model can never be picked up by the runtime.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = ProbsModel(net).eval()
    _torch_export(model, torch.zeros(1, 2, tile, tile), path)
    write_card(path, card)
    shapes = check_shapes or [(2, 2, tile, tile), (1, 2, 96, 160)]
    diff = parity(path, model, shapes)
    if not diff < PARITY_TOL:
        path.unlink(missing_ok=True)
        raise ParityError(f"ONNX Runtime differs from torch by {diff:.2e} (limit {PARITY_TOL:.0e})")
    return diff
