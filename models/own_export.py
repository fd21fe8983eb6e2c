"""The fitted classifier as ONE ONNX model with a land_cover card, by method (models/own_head.py):
- encoder head: the feature extractors' graphs, their features concatenated, the head as a 1×1 convolution
  (standardisation folded in) and a softmax;
- bands-context forest: the feature graph (models/own_context.py), the pixels as rows (N·H·W, 48), the forest
  as an ONNX tree ensemble (skl2onnx) and its probabilities back to (N, C, H, W).

It runs like any bundled model: `contrasat land-cover --model MY_LC.onnx` on another scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .card import CARD_KEY, ModelCard
from .errors import ModelError
from .own_head import Forest, Head

PROBS = "probs"
MIN_OPSET = 13  # Softmax over axis 1 of a 4-D tensor (earlier opsets flatten the trailing axes)


def _extractor(path: Path, index: int, count: int):
    """The extractor's graph, its internal names prefixed when several are merged; (model, output name)."""
    import onnx
    from onnx import compose

    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ModelError(f"feature extractor {path.name} uses opset {opset}; {MIN_OPSET} or later is needed")
    del model.metadata_props[:]
    del model.graph.output[1:]  # the per-pixel features are the first output
    if count > 1:
        model = compose.add_prefix(model, f"x{index}/", rename_inputs=False)
    return model, model.graph.output[0].name


def build_classifier(extractors: list[Path], head: Head, card: ModelCard) -> object:
    """The ONNX ModelProto of extractors + head + softmax, carrying `card` (checked by the ONNX checker)."""
    from onnx import TensorProto, compose, helper, numpy_helper

    parts = [_extractor(p, i, len(extractors)) for i, p in enumerate(extractors)]
    model, names = parts[0][0], [parts[0][1]]
    for other, name in parts[1:]:
        model = compose.merge_models(model, other, io_map=[])
        names.append(name)
    graph = model.graph
    features = names[0]
    if len(names) > 1:
        features = "features"
        graph.node.append(helper.make_node("Concat", names, [features], axis=1, name="concat_features"))
    n_classes, dim = head.weight.shape
    graph.initializer.extend([
        numpy_helper.from_array(head.weight.reshape(n_classes, dim, 1, 1).astype(np.float32), "head_weight"),
        numpy_helper.from_array(head.bias.astype(np.float32), "head_bias"),
    ])  # fmt: skip
    graph.node.append(
        helper.make_node("Conv", [features, "head_weight", "head_bias"], ["logits"], name="head")
    )
    graph.node.append(helper.make_node("Softmax", ["logits"], [PROBS], axis=1, name="softmax"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(PROBS, TensorProto.FLOAT, ["n", n_classes, "h", "w"]))
    return _with_card(model, card)


def build_forest_classifier(forest: Forest, card: ModelCard) -> object:
    """The ONNX ModelProto of the context features + the forest's probabilities, carrying `card`."""
    from onnx import TensorProto, compose, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from . import own_context

    rf = forest.model
    bands = tuple(card.inputs[0].bands)
    n_classes, dim = len(rf.classes_), own_context.n_features(bands)
    trees = convert_sklearn(rf, initial_types=[("rows", FloatTensorType([None, dim]))],
                            options={id(rf): {"zipmap": False}},
                            target_opset={"": own_context.OPSET, "ai.onnx.ml": 3})  # fmt: skip
    trees = compose.add_prefix(trees, "forest/", rename_inputs=False)
    probabilities = next(o.name for o in trees.graph.output if o.name.endswith("probabilities"))
    nodes, features = own_context.build_graph_nodes(helper, own_context.INPUT, bands)

    def const(name: str, values: list[int]):
        return helper.make_node("Constant", [], [name], value_ints=values, name=name)

    nodes += [  # (N, 48, H, W) -> (N·H·W, 48) rows -> trees -> (N·H·W, C) -> (N, H, W, C) -> (N, C, H, W)
        helper.make_node("Transpose", [features], ["nhwc"], perm=[0, 2, 3, 1], name="to_nhwc"),
        helper.make_node("Shape", ["nhwc"], ["nhwc_shape"], end=3, name="nhw"),
        const("rows_shape", [-1, dim]), const("n_classes", [n_classes]),
        helper.make_node("Reshape", ["nhwc", "rows_shape"], ["rows"], name="to_rows"),
        *trees.graph.node,
        helper.make_node("Concat", ["nhwc_shape", "n_classes"], ["nhwc_probs_shape"], axis=0, name="probs_shape"),
        helper.make_node("Reshape", [probabilities, "nhwc_probs_shape"], ["nhwc_probs"], name="to_pixels"),
        helper.make_node("Transpose", ["nhwc_probs"], [PROBS], perm=[0, 3, 1, 2], name="to_nchw"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "bands_context_forest",
        [helper.make_tensor_value_info(own_context.INPUT, TensorProto.FLOAT, ["n", len(bands), "h", "w"])],
        [helper.make_tensor_value_info(PROBS, TensorProto.FLOAT, ["n", n_classes, "h", "w"])],
        initializer=list(trees.graph.initializer),
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=list(trees.opset_import))
    model.ir_version = trees.ir_version
    return _with_card(model, card)


def _with_card(model, card: ModelCard):
    """`model` carrying `card` in its metadata (and as its description), checked by ONNX."""
    import onnx

    card.validate()
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    model.doc_string = card.description
    onnx.checker.check_model(model)
    return model


def save_classifier(model: object, path: Path) -> None:
    import onnx

    onnx.save(model, str(path))
