"""The fitted classifier as ONE ONNX model: the feature extractors' graphs, their features concatenated, the
head as a 1×1 convolution (standardisation folded in) and a softmax, with a land_cover card.

It runs like any bundled model: `contrasat land-cover --model MY_LC.onnx` on another scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .card import CARD_KEY, ModelCard
from .errors import ModelError
from .own_head import Head

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
    import onnx
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
    card.validate()
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    model.doc_string = card.description
    onnx.checker.check_model(model)
    return model


def save_classifier(model: object, path: Path) -> None:
    import onnx

    onnx.save(model, str(path))
