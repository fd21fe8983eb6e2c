"""A fitted scikit-learn tree ensemble as a runtime model: NCHW card-normalised S2 in, NCHW probabilities out.

The graph is: features (torch Features, exported) -> (N·H·W, F) -> tree ensemble -> class
probabilities of the classes it was fitted on (trees_onnx.py) -> scattered onto the card's 10 classes -> (N, 10, H, W).
The runtime needs nothing new: indices are computed inside the graph from the normalised input.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..common.export import MAX_IR_VERSION, OPSET, OUTPUT
from .data import N_CLASSES
from .features import N_FEATURES, torch_features
from .trees_onnx import tree_ensemble_onnx

INPUT = "s2"


def _front(mean: list[float], std: list[float], clip: tuple[float, float]) -> onnx.ModelProto:
    """Exported torch graph: (N, 13, H, W) -> (N·H·W, F) pixel features in row-major pixel order."""
    import torch

    features = torch_features()(mean, std, clip)

    class Flatten(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.features(x).permute(0, 2, 3, 1).reshape(-1, N_FEATURES)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Flatten().eval(), (torch.zeros(1, len(mean), 8, 8),), buf, opset_version=OPSET,
            input_names=[INPUT], output_names=["pixel_features"],
            dynamic_axes={INPUT: {0: "n", 2: "h", 3: "w"}, "pixel_features": {0: "pixels"}}, dynamo=False,
        )  # fmt: skip
    return onnx.load_from_string(buf.getvalue())


def tree_model_onnx(model, mean: list[float], std: list[float], clip: tuple[float, float]) -> onnx.ModelProto:
    """The whole runtime graph for a fitted scikit-learn classifier whose classes are card class values."""
    front = _front(mean, std, clip)
    trees, tree_in, tree_probs = tree_ensemble_onnx(model, N_FEATURES, OPSET)
    for proto in (front, trees):
        proto.ir_version = MAX_IR_VERSION  # merge_models needs equal IR versions
    merged = onnx.compose.merge_models(front, trees, io_map=[("pixel_features", tree_in)])
    graph = merged.graph
    # (K,) fitted classes -> (K, 10) one-hot rows: probabilities of classes never fitted stay exactly 0.
    scatter = np.zeros((len(model.classes_), N_CLASSES), dtype=np.float32)
    scatter[np.arange(len(model.classes_)), np.asarray(model.classes_, dtype=np.int64)] = 1.0
    graph.initializer.extend([
        numpy_helper.from_array(scatter, "class_scatter"),
        numpy_helper.from_array(np.array([0, 2, 3], dtype=np.int64), "nhw_axes"),
        numpy_helper.from_array(np.array([N_CLASSES], dtype=np.int64), "n_classes"),
    ])  # fmt: skip
    graph.node.extend([
        helper.make_node("MatMul", [tree_probs, "class_scatter"], ["probs_flat"]),
        helper.make_node("Shape", [INPUT], ["input_shape"]),
        helper.make_node("Gather", ["input_shape", "nhw_axes"], ["nhw"], axis=0),
        helper.make_node("Concat", ["nhw", "n_classes"], ["nhwc_shape"], axis=0),
        helper.make_node("Reshape", ["probs_flat", "nhwc_shape"], ["probs_nhwc"]),
        helper.make_node("Transpose", ["probs_nhwc"], [OUTPUT], perm=[0, 3, 1, 2]),
    ])  # fmt: skip
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", N_CLASSES, "h", "w"]))
    merged.ir_version = min(merged.ir_version, MAX_IR_VERSION)
    onnx.checker.check_model(merged)
    return merged
