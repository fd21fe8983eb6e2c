"""The features of the own-classes forest as an ONNX graph: the study's `context` set (training/ownclasses).

The 13 L1C bands as reflectance 0..1 (no data 0), NDVI (B08/B04), NDWI (B03/B08) and NDBI (B11/B08), 0 where
undefined, then the means of those 16 channels over 3x3 and 7x7 windows: 48 features per pixel. Edges are
mirrored as scipy's `uniform_filter(mode="reflect")` mirrors them (the edge pixel repeated: d c b a | a b c d),
so the runtime computes exactly the features the study scored. As a graph, the features run inside the
saved classifier, on any engine, like a bundled extractor. On L2A input (no B10) the same features are made
from its 12 bands (45 features); the study had L1C.
"""

from __future__ import annotations

from .bands import S2L1C_BANDS, S2L2A_BANDS
from .card import FEATURES, InputSpec, ModelCard

INPUT = "s2"
OUTPUT = "features"
WINDOWS = (3, 7)  # the study's CONTEXT_WINDOWS
INDICES = (
    ("ndvi", "B08", "B04"),
    ("ndwi", "B03", "B08"),
    ("ndbi", "B11", "B08"),
)  # (name, a, b): (a-b)/(a+b)
OPSET = 17
INT64_MIN = -(2**63)


def n_features(bands: tuple[str, ...] = S2L1C_BANDS) -> int:
    """Features per pixel: the bands and the indices, then their means over each window."""
    return (len(bands) + len(INDICES)) * (1 + len(WINDOWS))


def input_spec(bands: tuple[str, ...] = S2L1C_BANDS) -> InputSpec:
    """The bands (L1C: 13, as in the study; L2A: 12), x / 10000 (reflectance), no clip: `band_features`."""
    n = len(bands)
    sensor = "S2L1C" if tuple(bands) == S2L1C_BANDS else "S2L2A"
    return InputSpec(name=INPUT, sensor=sensor, bands=list(bands), units="reflectance_x10000",
                     mean=[0.0] * n, std=[10000.0] * n)  # fmt: skip


def card(bands: tuple[str, ...] = S2L1C_BANDS) -> ModelCard:
    """The card of the feature graph alone (task `features`), as own_features reads an extractor's."""
    level = "L1C" if tuple(bands) == S2L1C_BANDS else "L2A"
    return ModelCard(
        name="bands_context", task=FEATURES, inputs=[input_spec(bands)], classes=[], tile_size=256, overlap=16,
        resolution_m=10.0, output_kind="features", license="GPL-2.0-or-later",
        metrics={"dim": n_features(bands)},
        description=f"{n_features(bands)} features per pixel: {len(bands)} S2 {level} bands as reflectance, NDVI, "
        "NDWI, NDBI and their means over 3x3 and 7x7 windows (edges mirrored)",
    )  # fmt: skip


def bands_of(level_l2a: bool) -> tuple[str, ...]:
    return S2L2A_BANDS if level_l2a else S2L1C_BANDS


def _mirror(helper, nodes: list, x: str, pad: int, axis: int, tag: str) -> str:
    """`x` padded by `pad` pixels on both sides of `axis`, mirrored with the edge pixel repeated."""
    consts = {
        "lo_start": [pad - 1], "lo_end": [INT64_MIN], "hi_start": [-1], "hi_end": [-pad - 1],
        "axis": [axis], "step": [-1],
    }  # fmt: skip
    names = {k: f"{tag}_{k}" for k in consts}
    for k, v in consts.items():
        nodes.append(helper.make_node("Constant", [], [names[k]], value_ints=v, name=names[k]))
    lo, hi, out = f"{tag}_lo", f"{tag}_hi", f"{tag}_padded"
    nodes.append(helper.make_node("Slice", [x, names["lo_start"], names["lo_end"], names["axis"], names["step"]],
                                  [lo], name=lo))  # fmt: skip
    nodes.append(helper.make_node("Slice", [x, names["hi_start"], names["hi_end"], names["axis"], names["step"]],
                                  [hi], name=hi))  # fmt: skip
    nodes.append(helper.make_node("Concat", [lo, x, hi], [out], axis=axis, name=out))
    return out


def _normalised_difference(helper, nodes: list, bands: str, a: int, b: int, tag: str) -> str:
    """(a - b) / (a + b) of two band channels, 0 where the sum is 0 (the study's nan/inf -> 0)."""
    for name, index in (("a", a), ("b", b)):
        nodes.append(helper.make_node("Constant", [], [f"{tag}_{name}_idx"], value_ints=[index]))
        nodes.append(helper.make_node("Gather", [bands, f"{tag}_{name}_idx"], [f"{tag}_{name}"], axis=1))
    nodes += [
        helper.make_node("Sub", [f"{tag}_a", f"{tag}_b"], [f"{tag}_num"]),
        helper.make_node("Add", [f"{tag}_a", f"{tag}_b"], [f"{tag}_den"]),
        helper.make_node("Constant", [], [f"{tag}_zero"], value_float=0.0),
        helper.make_node("Constant", [], [f"{tag}_one"], value_float=1.0),
        helper.make_node("Equal", [f"{tag}_den", f"{tag}_zero"], [f"{tag}_undefined"]),
        helper.make_node("Where", [f"{tag}_undefined", f"{tag}_one", f"{tag}_den"], [f"{tag}_safe"]),
        helper.make_node("Div", [f"{tag}_num", f"{tag}_safe"], [f"{tag}_ratio"]),
        helper.make_node("Where", [f"{tag}_undefined", f"{tag}_zero", f"{tag}_ratio"], [tag]),
    ]  # fmt: skip
    return tag


def build_graph_nodes(helper, x: str, bands: tuple[str, ...] = S2L1C_BANDS) -> tuple[list, str]:
    """The nodes from the prepared input `x` (N, B, H, W) to the (N, 3 (B + 3), H, W) features; (nodes, output)."""
    nodes: list = []
    index = {b: i for i, b in enumerate(bands)}
    ratios = [_normalised_difference(helper, nodes, x, index[a], index[b], name) for name, a, b in INDICES]
    nodes.append(helper.make_node("Concat", [x, *ratios], ["bands"], axis=1, name="bands"))
    parts = ["bands"]
    for w in WINDOWS:
        padded = _mirror(helper, nodes, "bands", w // 2, 2, f"rows{w}")
        padded = _mirror(helper, nodes, padded, w // 2, 3, f"cols{w}")
        nodes.append(
            helper.make_node("AveragePool", [padded], [f"mean{w}"], kernel_shape=[w, w], name=f"mean{w}")
        )
        parts.append(f"mean{w}")
    nodes.append(helper.make_node("Concat", parts, [OUTPUT], axis=1, name=OUTPUT))
    return nodes, OUTPUT


def feature_model(bands: tuple[str, ...] = S2L1C_BANDS, with_card: bool = True):
    """The feature graph as an ONNX model (input `s2` (N, 13, H, W), output `features` (N, 48, H, W) for L1C)."""
    import onnx
    from onnx import TensorProto, helper

    from .card import CARD_KEY

    nodes, out = build_graph_nodes(helper, INPUT, bands)
    graph = helper.make_graph(
        nodes, "bands_context",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", len(bands), "h", "w"])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["n", n_features(bands), "h", "w"])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if with_card:
        entry = model.metadata_props.add()
        entry.key, entry.value = CARD_KEY, card(bands).to_json()
    onnx.checker.check_model(model)
    return model
