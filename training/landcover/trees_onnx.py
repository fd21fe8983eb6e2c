"""Fitted scikit-learn tree ensembles as one ONNX `TreeEnsembleClassifier` node (ai.onnx.ml), written here.

skl2onnx 1.20 cannot convert scikit-learn 1.9's HistGradientBoostingClassifier (it builds an attribute
from numpy booleans), and the two ensembles used here are simple to write out directly. The tests compare
ONNX Runtime with `predict_proba` on real pixels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

ML_OPSET = 3


def _floor32(threshold: float) -> np.float32:
    """The largest float32 <= threshold. scikit-learn compares (float32-valued) features with float64
    thresholds; with this float32 threshold `x <= t` gives the same answer for every float32 x, where plain
    rounding could move the threshold onto a feature value the training pixels share."""
    t32 = np.float32(threshold)
    return np.nextafter(t32, np.float32(-np.inf)) if float(t32) > float(threshold) else t32


class _Nodes:
    """Attribute lists of a TreeEnsembleClassifier, filled tree by tree."""

    def __init__(self) -> None:
        self.tree, self.node, self.feature, self.value, self.mode, self.true, self.false = (
            [] for _ in range(7)
        )
        self.missing_true: list[int] = []
        self.w_tree, self.w_node, self.w_class, self.w_value = [], [], [], []

    def add(self, t: int, n: int, feature: int, threshold: float, leaf: bool, left: int, right: int,
            missing_left: bool = True) -> None:  # fmt: skip
        self.tree.append(t)
        self.node.append(n)
        self.feature.append(int(feature) if not leaf else 0)
        self.value.append(float(_floor32(threshold)) if not leaf else 0.0)
        self.mode.append("LEAF" if leaf else "BRANCH_LEQ")
        self.true.append(int(left) if not leaf else 0)
        self.false.append(int(right) if not leaf else 0)
        self.missing_true.append(int(bool(missing_left)) if not leaf else 0)

    def weight(self, t: int, n: int, k: int, value: float) -> None:
        self.w_tree.append(t)
        self.w_node.append(n)
        self.w_class.append(int(k))
        self.w_value.append(float(value))


def _hgb_nodes(model) -> tuple[_Nodes, list[float], str]:
    """HistGradientBoosting: one tree per class per round, raw scores summed, softmax (x <= threshold: left)."""
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise ValueError("categorical features are not supported")
    k_classes = len(model.classes_)
    nodes, t = _Nodes(), 0
    for round_trees in model._predictors:
        for k, predictor in enumerate(round_trees if k_classes > 2 else round_trees[:1]):
            for i, nd in enumerate(predictor.nodes):
                leaf = bool(nd["is_leaf"])
                nodes.add(t, i, nd["feature_idx"], nd["num_threshold"], leaf, nd["left"], nd["right"],
                          bool(nd["missing_go_to_left"]))  # fmt: skip
                if leaf:
                    nodes.weight(t, i, k, nd["value"])
            t += 1
    base = [float(v) for v in np.asarray(model._baseline_prediction).ravel()]
    if k_classes <= 2:
        raise ValueError("binary gradient boosting is not needed here and not supported")
    return nodes, base, "SOFTMAX"


def _forest_nodes(model) -> tuple[_Nodes, list[float], str]:
    """RandomForest: leaf class proportions averaged over trees (x <= threshold: left)."""
    k_classes, n_trees = len(model.classes_), len(model.estimators_)
    nodes = _Nodes()
    for t, est in enumerate(model.estimators_):
        tree = est.tree_
        for i in range(tree.node_count):
            leaf = tree.children_left[i] == -1
            nodes.add(
                t, i, tree.feature[i], tree.threshold[i], leaf, tree.children_left[i], tree.children_right[i]
            )
            if leaf:
                share = tree.value[i, 0] / tree.value[i, 0].sum()
                for k in range(k_classes):
                    if share[k] > 0:
                        nodes.weight(t, i, k, share[k] / n_trees)
    return nodes, [0.0] * k_classes, "NONE"


def tree_ensemble_onnx(model, n_features: int, opset: int) -> tuple[onnx.ModelProto, str, str]:
    """(model, input name, probability output name): (P, n_features) float32 -> (P, K) probabilities."""
    kind = type(model).__name__
    if kind == "HistGradientBoostingClassifier":
        nodes, base, post = _hgb_nodes(model)
    elif kind == "RandomForestClassifier":
        nodes, base, post = _forest_nodes(model)
    else:
        raise ValueError(f"no ONNX writer for {kind}")
    node = helper.make_node(
        "TreeEnsembleClassifier", ["pixel_features_in"], ["tree_label", "tree_probs"], domain="ai.onnx.ml",
        classlabels_int64s=list(range(len(model.classes_))), base_values=base, post_transform=post,
        nodes_treeids=nodes.tree, nodes_nodeids=nodes.node, nodes_featureids=nodes.feature,
        nodes_values=nodes.value, nodes_modes=nodes.mode, nodes_truenodeids=nodes.true,
        nodes_falsenodeids=nodes.false, nodes_missing_value_tracks_true=nodes.missing_true,
        class_treeids=nodes.w_tree, class_nodeids=nodes.w_node, class_ids=nodes.w_class,
        class_weights=nodes.w_value,
    )  # fmt: skip
    k = len(model.classes_)
    graph = helper.make_graph(
        [node], "trees",
        [helper.make_tensor_value_info("pixel_features_in", TensorProto.FLOAT, ["pixels", n_features])],
        [helper.make_tensor_value_info("tree_label", TensorProto.INT64, ["pixels"]),
         helper.make_tensor_value_info("tree_probs", TensorProto.FLOAT, ["pixels", k])],
    )  # fmt: skip
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    )
    return proto, "pixel_features_in", "tree_probs"
