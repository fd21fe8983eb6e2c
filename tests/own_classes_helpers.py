"""Helpers for the own-classes tests and bench: a simulated analyst drawing compact polygons inside the
interiors of a real land-cover map, label files, and a tiny feature extractor (shape tests only)."""

from __future__ import annotations

from pathlib import Path

import fiona
import numpy as np
import onnx
import rasterio
from contrasat.models.card import FEATURES, InputSpec, ModelCard, write_card
from onnx import TensorProto, helper, numpy_helper
from shapely.geometry import box, mapping

DATA = Path("/work/shared/data")
TERRAMIND = DATA / "terramind"
SITE = "433D_629L_3_1"  # water, trees, crops, built area and rangeland in one 224 x 224 px scene
S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
LULC_NAMES = {1: "water", 2: "trees", 3: "flooded vegetation", 4: "crops", 5: "built area", 6: "bare ground",
              7: "snow/ice", 8: "clouds", 9: "rangeland"}  # fmt: skip


def s2_features_spec() -> InputSpec:
    return InputSpec(name="s2", sensor="S2L1C", bands=S2_BANDS, units="reflectance_x10000",
                     mean=[1500.0] * 13, std=[1000.0] * 13, clip=[0.0, 15000.0])  # fmt: skip


def s1_features_spec() -> InputSpec:
    return InputSpec(name="s1", sensor="S1", bands=["VV", "VH"], units="dB", mean=[-11.0, -18.0],
                     std=[4.0, 5.0], clip=[-50.0, 5.0])  # fmt: skip


def make_extractor(path: Path, spec: InputSpec, dim: int = 8, seed: int = 0, name: str = "") -> Path:
    """A feature extractor (card task 'features'): 3x3 conv + ReLU + 1x1 conv, (N, dim, H, W) out."""
    rng = np.random.default_rng(seed)
    c = len(spec.bands)
    w1 = rng.normal(0, 0.5, (dim, c, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (dim, dim, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", [spec.name, "w1"], ["h"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("Conv", ["r", "w2"], ["features"])],
        "extractor",
        [helper.make_tensor_value_info(spec.name, TensorProto.FLOAT, ["n", c, "h", "w"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", dim, "h", "w"])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    card = ModelCard(name=name or path.stem, task=FEATURES, inputs=[spec], classes=[], tile_size=256, overlap=16,
                     output_kind="features", description="test feature extractor")  # fmt: skip
    write_card(path, card)
    return path


def draw_squares(lulc: np.ndarray, k: int, side: int, seed: int, classes=None, margin: int = 1):
    """(class value, row, col) of up to k side x side squares per class, each inside that class's interior
    (the square plus `margin` pixels around it all of one class), not touching each other."""
    rng = np.random.default_rng(seed)
    taken = np.zeros(lulc.shape, dtype=bool)
    out = []
    outer = side + 2 * margin
    for value in classes if classes is not None else [v for v in np.unique(lulc) if v != 0]:
        same = (lulc == value).astype(np.int32)
        integral = np.pad(same, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        full = (integral[outer:, outer:] - integral[:-outer, outer:] - integral[outer:, :-outer]
                + integral[:-outer, :-outer]) == outer * outer  # fmt: skip
        rows, cols = np.nonzero(full)
        placed = 0
        for i in rng.permutation(len(rows)):
            r, c = rows[i] + margin, cols[i] + margin
            if taken[r - margin : r + side + margin, c - margin : c + side + margin].any():
                continue
            taken[r - margin : r + side + margin, c - margin : c + side + margin] = True
            out.append((int(value), int(r), int(c)))
            placed += 1
            if placed == k:
                break
    return out


def write_labels(path: Path, squares, transform, crs, side: int, field: str = "class", names=None,
                 extra=None, to_crs=None, driver=None, field_type="str", points=False) -> Path:  # fmt: skip
    """Squares (or their centres, as points) as a label file; class values as names (str) or codes (int)."""
    from rasterio.warp import transform_geom

    features = []
    for value, r, c in squares:
        x0, y0 = transform * (c, r)
        x1, y1 = transform * (c + side, r + side)
        geom = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        geom = geom.centroid if points else geom
        g = mapping(geom)
        if to_crs is not None:
            g = transform_geom(crs, to_crs, g)
        label = (names or LULC_NAMES)[value] if field_type == "str" else int(value)
        props = {field: label, **(extra(value) if extra else {})}
        features.append({"type": "Feature", "geometry": g, "properties": props})
    props_schema = {k: ("str" if isinstance(v, str) else "int") for k, v in features[0]["properties"].items()}
    schema = {"geometry": "Point" if points else "Polygon", "properties": props_schema}
    driver = driver or ("GeoJSON" if path.suffix == ".geojson" else "GPKG")
    out_crs = to_crs if to_crs is not None else crs
    with fiona.open(path, "w", driver=driver, crs=out_crs, schema=schema) as dst:
        for f in features:
            dst.write(f)
    return path


def site(name: str = SITE) -> tuple[Path, np.ndarray, object, object]:
    """(S2 path, LULC array, transform, CRS) of a TerraMind site."""
    s2 = TERRAMIND / "S2L1C" / f"{name}.tif"
    with rasterio.open(TERRAMIND / "LULC" / f"{name}.tif") as src:
        return s2, src.read(1), src.transform, src.crs
