"""Hostile but realistic inputs on copies of the bundled sample: each is converted with a note, or refused
with one line and exit 2 (cases and answers: tests/hostile_cases.py, docs/reliability.md)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import fiona
import numpy as np
import onnx
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models.bands import S2L1C_BANDS
from contrasat.models.card import ClassInfo, ModelCard, write_card
from hostile_cases import ids, snapshot, write_vrt
from onnx import TensorProto, helper, numpy_helper
from rasterio.transform import Affine
from runtime_helpers import (
    FLOOD_CLASSES,
    REPO,
    S1_SAMPLE,
    S2_SAMPLE,
    expected_classes,
    make_model,
    s1_spec,
    s2_spec,
)

STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
PATCH = REPO / "tests" / "fixtures" / "data" / "eolearn" / "slovenia_patch.npz"
LAND_COVER_MODEL = REPO / "models" / "weights" / "landcover_s2.onnx"


@dataclass
class Expect:
    """'refuse' (exit 2, one line containing `needle`) or 'ok' (exit 0, a note containing `needle` if given)."""

    kind: str
    needle: str | None = None
    reference: np.ndarray | None = None  # the class map the run must reproduce
    tolerance: float = 0.0  # share of valid pixels allowed to differ (rounding of converted units)


def refuse(needle: str) -> Expect:
    return Expect("refuse", needle)


def ok(note: str | None = None, reference=None, tolerance: float = 0.0) -> Expect:
    return Expect("ok", note, reference, tolerance)


def _sample(path=S1_SAMPLE):
    with rasterio.open(path) as src:
        return src.read(), src.profile, list(src.descriptions)


def write(path: Path, data: np.ndarray, base=S1_SAMPLE, descriptions=None, **profile) -> Path:
    """A raster like `base` (grid, CRS) holding `data`, with profile overrides; descriptions=None keeps base's."""
    _, base_profile, base_desc = _sample(base)
    out = base_profile | {"count": data.shape[0], "dtype": str(data.dtype), "height": data.shape[1],
                          "width": data.shape[2]} | profile  # fmt: skip
    with rasterio.open(path, "w", **out) as dst:
        dst.write(data)
        names = base_desc if descriptions is None else descriptions
        if names and len(names) == data.shape[0]:
            dst.descriptions = tuple(n or "" for n in names)
    return path


def _db():
    data, _, _ = _sample()
    return data.astype(np.float64)


def _int(db, factor, dtype="int16", nodata=-9999):
    scaled = np.where(np.isfinite(db), np.round(db * factor), nodata)
    return scaled.astype(dtype)


def _graph_model(path: Path, nodes, outputs_shape, card_classes=FLOOD_CLASSES, in_channels=2, extra_inits=(),
                 colour=None) -> Path:  # fmt: skip
    """An ONNX model on input 's1' (N, in_channels, H, W) with the given nodes producing 'probs'."""
    w = np.zeros((2, in_channels, 1, 1), dtype=np.float32)
    w[0, -1], w[1, -1] = 10.0, -10.0
    inits = [numpy_helper.from_array(w, "w"), *extra_inits]
    x = helper.make_tensor_value_info("s1", TensorProto.FLOAT, ["N", in_channels, "H", "W"])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, outputs_shape)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["s1", "w"], ["z"]), *nodes], "m", [x], [y], initializer=inits
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    classes = [ClassInfo(c.value, c.name, colour or c.color) for c in card_classes]
    card = ModelCard(
        name=path.stem, task="flood", inputs=[s1_spec()], classes=classes, tile_size=128, overlap=16
    )
    if colour is not None:  # write_card validates; store the bad card the way a hand-edited file would
        proto = onnx.load(str(path))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "contrasat.card", card.to_json()
        onnx.save(proto, str(path))
        return path
    write_card(path, card)
    return path


SOFTMAX = helper.make_node("Softmax", ["z"], ["probs"], axis=1)


def _aoi(path: Path, geometries: list[dict], crs="EPSG:4326") -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g} for g in geometries]}))  # fmt: skip
    return path


def _lonlat(col: float, row: float) -> tuple[float, float]:
    with rasterio.open(S1_SAMPLE) as src:
        return src.transform * (col, row)


def _reproject(src_path: Path, dst_path: Path, crs: str, crop_right: bool = False) -> Path:
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(src_path) as src:
        transform, w, h = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)
        width = w // 2 if crop_right else w
        profile = src.profile | {"crs": crs, "transform": transform, "width": width, "height": h}
        with rasterio.open(dst_path, "w", **profile) as dst:
            for b in range(1, src.count + 1):
                reproject(rasterio.band(src, b), rasterio.band(dst, b), resampling=Resampling.nearest)
            dst.descriptions = src.descriptions
    return dst_path


class Env:
    """What builders need: a folder, the threshold models and the reference maps."""

    def __init__(self, tmp: Path, threshold_model: Path, fusion_model: Path, s2_model: Path):
        self.tmp, self.model, self.fusion, self.s2_model = tmp, threshold_model, fusion_model, s2_model
        self.out = tmp / "out"
        self.out.mkdir()

    def flood(self, s1, *extra, model=None):
        return ["map-floods", "--s1", s1, "--model", model or self.model, "--out", self.out / "o.tif", *extra]

    def land_cover(self, s2, *extra, model=None):
        return [
            "land-cover",
            "--s2",
            s2,
            "--model",
            model or self.s2_model,
            "--out",
            self.out / "o.tif",
            *extra,
        ]

    def s2_reference(self) -> np.ndarray:
        args = self.land_cover(S2_SAMPLE, "--progress", "none", "--out", self.out / "ref.tif")
        assert main([str(a) for a in args]) == 0
        with rasterio.open(self.out / "ref.tif") as src:
            ref = src.read(1)
        (self.out / "ref.tif").unlink()
        return ref


def build(case: str, env: Env):  # noqa: C901 (one branch per case keeps each case readable)
    t = env.tmp
    ref = expected_classes(S1_SAMPLE)
    db = _db()
    # --- Sentinel-1 units
    if case == "s1-linear-power":
        return env.flood(write(t / "p.tif", (10 ** (db / 10)).astype("float32"))), ok("linear", ref, 1e-3)
    if case == "s1-amplitude":
        amp = np.sqrt(10 ** (db / 10)).astype("float32")
        return env.flood(write(t / "a.tif", amp)), ok("amplitude", ref, 1e-3)
    if case == "s1-db-x100-int16":
        return env.flood(write(t / "i.tif", _int(db, 100), nodata=-9999)), ok("dB × 100", ref, 5e-3)
    if case == "s1-db-x10-int16":
        return env.flood(write(t / "i.tif", _int(db, 10), nodata=-9999)), ok("dB × 10", ref, 2e-2)
    if case == "s1-file-scale":
        path = write(t / "s.tif", _int(db, 100), nodata=-9999)
        with rasterio.open(path, "r+") as dst:
            dst.scales = (0.01, 0.01)
        return env.flood(path), ok("scale/offset applied", ref, 5e-3)
    if case == "s1-uint16-dn":
        dn = np.where(np.isfinite(db), np.sqrt(10 ** (db / 10)) * 500, 0).astype("uint16")
        return env.flood(write(t / "dn.tif", dn, nodata=0)), refuse("unsigned integers (uint16)")
    if case == "s1-uint8-rescaled":
        u8 = np.where(np.isfinite(db), np.clip((db + 35) * 6, 1, 255), 0).astype("uint8")
        return env.flood(write(t / "u8.tif", u8, nodata=0)), refuse("unsigned integers (uint8)")
    if case == "s1-all-zero":
        return env.flood(write(t / "z.tif", np.zeros_like(db, dtype="float32"), nodata=None)), refuse(
            "one value (0)"
        )
    if case == "s1-constant":
        return env.flood(write(t / "c.tif", np.full_like(db, -15, dtype="float32"))), refuse(
            "one value (-15)"
        )
    if case == "s1-hh-hv":
        return env.flood(write(t / "hh.tif", db.astype("float32"), descriptions=["HH", "HV"])), refuse(
            "HH/HV"
        )
    if case == "s1-swapped-bands":
        swapped = db[::-1].astype("float32")
        return env.flood(write(t / "sw.tif", swapped, descriptions=["", ""])), refuse(
            "VH is brighter than VV"
        )
    if case == "s1-int8-db":
        i8 = _int(db, 1, "int8", -128)
        return env.flood(write(t / "i8.tif", i8, nodata=-128)), ok(None, ref, 0.1)
    if case == "s1-huge-nodata":
        big = np.where(np.isfinite(db), db, -3.4e38).astype("float32")
        return env.flood(write(t / "h.tif", big, nodata=-3.4e38)), ok(None, ref)
    if case == "s1-undeclared-nodata":
        filled = db.copy()
        filled[:, :, :40] = np.nan  # a fill border, written as -9999
        reference = ref.copy()
        reference[:, :40] = 255
        path = write(t / "u.tif", _int(filled, 100), nodata=None)
        return env.flood(path), ok("every band is -9999 treated as nodata", reference, 5e-3)
    if case == "s1-zero-border-linear":
        power = (10 ** (db / 10)).astype("float32")
        power[:, :, :40] = 0.0  # a fill border, as GRD products have, without declared nodata
        reference = ref.copy()
        reference[:, :40] = 255
        return env.flood(write(t / "zb.tif", np.nan_to_num(power), nodata=None)), ok(
            "every band is 0 treated as nodata", reference, 1e-3
        )
    if case == "s1-coarse-pixels":
        _, p, _ = _sample()
        coarse = db[:, ::10, ::10].astype("float32")
        return env.flood(write(t / "c.tif", coarse, transform=p["transform"] * Affine.scale(10))), ok(
            "trained at 10 m"
        )
    if case == "s1-float-db-file-scale":
        path = write(t / "fs.tif", db.astype("float32"))
        with rasterio.open(path, "r+") as dst:
            dst.scales = (0.01, 0.01)
        return env.flood(path), refuse("is not backscatter (expected")
    if case == "s1-description-ratio":
        data = np.stack([db[1] - db[0], db[1]]).astype("float32")
        return env.flood(write(t / "r.tif", data, descriptions=["VH/VV ratio", "VH"])), refuse(
            "band 1 is described 'VH/VV ratio'"
        )
    if case == "s1-description-difference":
        data = np.stack([db[0], db[0] - db[1]]).astype("float32")
        return env.flood(write(t / "d.tif", data, descriptions=["VV", "VV-VH"])), refuse(
            "band 2 is described 'VV-VH'"
        )
    if case == "s1-description-angle":
        data = np.stack([db[0], np.full_like(db[0], 38.5)]).astype("float32")
        return env.flood(write(t / "a.tif", data, descriptions=["VV", "incidence angle"])), refuse(
            "VH missing"
        )
    if case == "s1-single-band":
        return env.flood(write(t / "one.tif", db[1:].astype("float32"), descriptions=[""])), refuse("1 band")
    # --- Sentinel-2 bands and scale
    l1c, _, names = _sample(S2_SAMPLE)
    l2a_idx = [i for i, n in enumerate(names) if n != "B10"]
    scl = np.full((1, *l1c.shape[1:]), 4, dtype=l1c.dtype)
    if case == "s2-l2a-scl-needs-b10":
        data = np.concatenate([l1c[l2a_idx], scl])
        path = write(t / "l2a.tif", data, S2_SAMPLE, descriptions=[names[i] for i in l2a_idx] + ["SCL"])
        return env.land_cover(path, model=LAND_COVER_MODEL), refuse("looks like L2A (no B10 band)")
    if case == "s2-l2a-12-needs-b10":
        path = write(t / "l2a.tif", l1c[l2a_idx], S2_SAMPLE, descriptions=[""] * 12)
        return env.land_cover(path, model=LAND_COVER_MODEL), refuse("looks like L2A (no B10 band)")
    if case == "s2-l2a-scl-by-description":
        order = l2a_idx[::-1]
        data = np.concatenate([scl, l1c[order]])
        path = write(t / "l2a.tif", data, S2_SAMPLE, descriptions=["SCL"] + [names[i] for i in order])
        return env.land_cover(path), ok(None, env.s2_reference())
    if case == "s2-l2a-12-by-count":
        path = write(t / "l2a.tif", l1c[l2a_idx], S2_SAMPLE, descriptions=[""] * 12)
        return env.land_cover(path), ok(None, env.s2_reference())
    if case == "s2-float-reflectance":
        refl = np.where(l1c == 0, np.nan, l1c / 10000.0).astype("float32")
        path = write(t / "f.tif", refl, S2_SAMPLE, nodata=np.nan)
        return env.land_cover(path), ok("float reflectance 0..1", env.s2_reference(), 1e-3)
    if case == "s2-uint8":
        u8 = np.clip(l1c / 20, 0, 255).astype("uint8")
        return env.land_cover(write(t / "u8.tif", u8, S2_SAMPLE)), refuse("8-bit")
    if case == "s2-uint16-file-scale-offset":
        stored = np.where(l1c == 0, 0, l1c.astype(np.int64) + 1000).astype("uint16")  # (refl + 0.1) / 0.0001
        path = write(t / "so.tif", stored, S2_SAMPLE, nodata=0)
        with rasterio.open(path, "r+") as dst:
            dst.scales, dst.offsets = (0.0001,) * 13, (-0.1,) * 13
        return env.land_cover(path), ok("after the file's scale/offset", env.s2_reference(), 1e-3)
    if case == "s2-implausible-scale":
        path = write(t / "ws.tif", l1c.astype("uint16"), S2_SAMPLE, nodata=0)
        with rasterio.open(path, "r+") as dst:
            dst.scales = (10.0,) * 13
        return env.land_cover(path), refuse("outside the plausible -0.1..1.5")
    if case == "s2-four-bands":
        keep = [names.index(b) for b in ("B02", "B03", "B04", "B08")]
        path = write(t / "four.tif", l1c[keep], S2_SAMPLE, descriptions=["B02", "B03", "B04", "B08"])
        return env.land_cover(path, model=LAND_COVER_MODEL), refuse("B01, B05, B06")
    if case == "s2-generic-band-names":
        path = write(t / "g.tif", l1c, S2_SAMPLE, descriptions=[f"Band {i}" for i in range(1, 14)])
        return env.land_cover(path), ok(None, env.s2_reference())
    # --- georeferencing, areas, AOI
    if case == "crs-no-geotransform":
        return env.flood(write(t / "n.tif", db.astype("float32"), transform=Affine.identity())), refuse(
            "no geotransform"
        )
    if case == "rotated-geotransform":
        _, p, _ = _sample()
        tr = p["transform"]
        rot = Affine(tr.a, 1e-6, tr.c, 1e-6, tr.e, tr.f)
        return env.flood(write(t / "r.tif", db.astype("float32"), transform=rot)), refuse(
            "rotated geotransform"
        )
    if case == "gcps-only":
        from rasterio.control import GroundControlPoint

        path = write(t / "g.tif", db.astype("float32"), transform=Affine.identity(), crs=None)
        with rasterio.open(path, "r+") as dst:
            dst.gcps = ([GroundControlPoint(0, 0, -0.78, 38.13), GroundControlPoint(512, 512, -0.73, 38.08),
                         GroundControlPoint(0, 512, -0.78, 38.08)], rasterio.crs.CRS.from_epsg(4326))  # fmt: skip
        return env.flood(path), refuse("ground control points")
    if case == "s1-no-crs":
        return env.flood(write(t / "nc.tif", db.astype("float32"), crs=None)), refuse(
            "no coordinate reference system"
        )
    if case == "areas-epsg3857":
        path = _reproject(S1_SAMPLE, t / "merc.tif", "EPSG:3857")
        extra = ["--statistics", env.out / "a.csv", "--polygons", env.out / "p.gpkg", "--min-polygon", "1"]
        return env.flood(path, *extra), Expect("areas", "EPSG:3857")
    if case == "areas-utm":
        path = _reproject(S1_SAMPLE, t / "utm.tif", "EPSG:32630")
        extra = ["--statistics", env.out / "a.csv", "--polygons", env.out / "p.geojson", "--min-polygon", "1"]
        return env.flood(path, *extra), Expect("areas", "EPSG:32630")
    if case == "aoi-self-intersecting":
        (a, b), (c, d) = _lonlat(50, 50), _lonlat(450, 450)
        bowtie = {"type": "Polygon", "coordinates": [[(a, b), (c, d), (c, b), (a, d), (a, b)]]}
        return env.flood(S1_SAMPLE, "--aoi", _aoi(t / "bow.geojson", [bowtie])), Expect(
            "bowtie", "make_valid"
        )
    if case == "aoi-zero-area":
        (a, b), (c, d) = _lonlat(50, 50), _lonlat(450, 450)
        flat = {"type": "Polygon", "coordinates": [[(a, b), (c, b), ((a + c) / 2, b), (a, b)]]}
        return env.flood(S1_SAMPLE, "--aoi", _aoi(t / "flat.geojson", [flat])), refuse("no area")
    if case == "aoi-sliver":
        (a, b), (c, d) = _lonlat(50.2, 50.2), _lonlat(450.2, 50.4)
        sliver = {"type": "Polygon", "coordinates": [[(a, b), (c, b), (c, d), (a, d), (a, b)]]}
        return env.flood(S1_SAMPLE, "--aoi", _aoi(t / "sliver.geojson", [sliver])), refuse(
            "covers no pixel centre"
        )
    if case == "aoi-point":
        pt = {"type": "Point", "coordinates": list(_lonlat(100, 100))}
        return env.flood(S1_SAMPLE, "--aoi", _aoi(t / "pt.geojson", [pt])), refuse("no polygon (Point")
    if case == "aoi-line":
        line = {"type": "LineString", "coordinates": [list(_lonlat(10, 10)), list(_lonlat(300, 300))]}
        return env.flood(S1_SAMPLE, "--aoi", _aoi(t / "ln.geojson", [line])), refuse("no polygon (LineString")
    if case == "aoi-not-vector":
        (t / "aoi.geojson").write_text("{ this is not json")
        return env.flood(S1_SAMPLE, "--aoi", t / "aoi.geojson"), refuse("not a readable vector file")
    if case == "aoi-outside":
        far = {"type": "Polygon", "coordinates": [[(10, 50), (10.1, 50), (10.1, 50.1), (10, 50)]]}
        return env.flood(S1_SAMPLE, "--aoi", _aoi(t / "far.geojson", [far])), refuse("AOI does not overlap")
    if case == "s2-other-crs-partial-overlap":
        s2 = _reproject(S2_SAMPLE, t / "s2_utm_half.tif", "EPSG:32630", crop_right=True)
        return env.flood(S1_SAMPLE, "--s2", s2, model=env.fusion), Expect("partial", None, ref)
    if case == "one-pixel-raster":
        _, p, _ = _sample()
        return env.flood(write(t / "px.tif", db[:, 200:201, 300:301].astype("float32"),
                               transform=p["transform"] * Affine.translation(300, 200))), ok("smaller than one")  # fmt: skip
    # --- models
    m = t / "models"
    m.mkdir(exist_ok=True)
    if case == "model-wrong-channels":
        return env.flood(
            S1_SAMPLE, model=_graph_model(m / "ch3.onnx", [SOFTMAX], ["N", 2, "H", "W"], in_channels=3)
        ), refuse("takes 3 channels")
    if case == "model-wrong-classes":
        three = [*FLOOD_CLASSES, ClassInfo(2, "other", "#ff0000")]
        return env.flood(
            S1_SAMPLE, model=_graph_model(m / "c3.onnx", [SOFTMAX], ["N", 2, "H", "W"], three)
        ), refuse("outputs 2 classes but its card lists 3")
    if case == "model-half-resolution":
        nodes = [helper.make_node("MaxPool", ["z"], ["zp"], kernel_shape=[2, 2], strides=[2, 2]),
                 helper.make_node("Softmax", ["zp"], ["probs"], axis=1)]  # fmt: skip
        return env.flood(S1_SAMPLE, model=_graph_model(m / "half.onnx", nodes, ["N", 2, "h", "w"])), refuse(
            "must keep the input size"
        )
    if case == "model-vector-output":
        nodes = [helper.make_node("GlobalAveragePool", ["z"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
                 helper.make_node("Softmax", ["f"], ["probs"], axis=1)]  # fmt: skip
        return env.flood(S1_SAMPLE, model=_graph_model(m / "vec.onnx", nodes, ["N", 2])), refuse("2-D array")
    card_edits = {
        "card-mean-string": (("inputs", 0, "mean", 0), "12", "field inputs[0].mean[0]"),
        "card-clip-string": (("inputs", 0, "clip"), "-50,5", "field inputs[0].clip"),
        "card-resolution-string": (("resolution_m",), "10 m", "field resolution_m"),
        "card-null-class-name": (("classes", 1, "name"), None, "field classes[1].name"),
    }
    if case in card_edits:
        where, value, needle = card_edits[case]
        proto = onnx.load(str(env.model))
        entry = next(p for p in proto.metadata_props if p.key == "contrasat.card")
        card = json.loads(entry.value)
        card["inputs"][0]["clip"] = [-50.0, 5.0]
        target = card
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value
        entry.value = json.dumps(card)
        onnx.save(proto, str(m / f"{case}.onnx"))
        return env.flood(S1_SAMPLE, "--polygons", env.out / "p.gpkg", model=m / f"{case}.onnx"), refuse(
            needle
        )
    if case == "model-bad-colour":
        return env.flood(
            S1_SAMPLE, model=_graph_model(m / "col.onnx", [SOFTMAX], ["N", 2, "H", "W"], colour="blue")
        ), refuse("colour 'blue'")
    if case == "model-all-nan":
        nan = numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "nan")
        nodes = [
            helper.make_node("Softmax", ["z"], ["s"], axis=1),
            helper.make_node("Mul", ["s", "nan"], ["probs"]),
        ]
        return env.flood(
            S1_SAMPLE, model=_graph_model(m / "nan.onnx", nodes, ["N", 2, "H", "W"], extra_inits=[nan])
        ), refuse("answered NaN for every pixel")
    if case == "model-partial-nan":
        # NaN where a logit is below -22 (VH below about -29 dB or above -11 dB): sqrt of a negative number
        k = numpy_helper.from_array(np.array(22.0, dtype=np.float32), "k")
        zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")
        nodes = [helper.make_node("Softmax", ["z"], ["s"], axis=1),
                 helper.make_node("Add", ["z", "k"], ["zk"]), helper.make_node("Sqrt", ["zk"], ["r"]),
                 helper.make_node("Mul", ["r", "zero"], ["r0"]), helper.make_node("Add", ["s", "r0"], ["probs"])]  # fmt: skip
        model = _graph_model(m / "pnan.onnx", nodes, ["N", 2, "H", "W"], extra_inits=[k, zero])
        return env.flood(S1_SAMPLE, model=model), Expect("nan", "answered NaN for")
    if case == "model-is-folder":
        (m / "folder.onnx").mkdir()
        return env.flood(S1_SAMPLE, model=m / "folder.onnx"), refuse("model")
    if case == "model-empty-file":
        (m / "empty.onnx").write_bytes(b"")
        return env.flood(S1_SAMPLE, model=m / "empty.onnx"), refuse("empty.onnx")
    if case == "model-wrong-task":
        return env.flood(S1_SAMPLE, model=env.s2_model), refuse("not a 'flood' model")
    # --- series
    if case == "series-red-reflectance":
        with rasterio.open(STACK) as src:
            ndvi, profile, desc = src.read(), src.profile, src.descriptions
        red = np.where(np.isfinite(ndvi), 0.05 + 0.1 * (1 - ndvi), np.nan).astype("float32")
        path = t / "red.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(red)
            dst.descriptions = desc
        return ["classify-series", "--stack", path, "--out", env.out / "o.tif"], refuse(
            "like red reflectance"
        )
    if case == "series-red-dn":
        with rasterio.open(STACK) as src:
            ndvi, profile, desc = src.read(), src.profile, src.descriptions
        dn = np.where(np.isfinite(ndvi), 500 + 1000 * (1 - ndvi), np.nan).astype("float32")
        path = t / "dn.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(dn)
            dst.descriptions = desc
        return ["classify-series", "--stack", path, "--out", env.out / "o.tif"], refuse("outside -1..1")
    if case == "series-bad-dates":
        return [
            "classify-series",
            "--stack",
            STACK,
            "--out",
            env.out / "o.tif",
            "--dates",
            "2020-13-45",
        ], refuse("dates must be")
    if case == "series-s1-raster":
        return ["classify-series", "--stack", S1_SAMPLE, "--out", env.out / "o.tif"], refuse(
            "holds Sentinel-1 bands VV, VH"
        )
    if case.startswith("series-s2-"):
        with np.load(PATCH) as z:  # five real L1C scenes of the Slovenia patch, on the NDVI stack's grid
            scenes = np.transpose(z["REFERENCE_SCENES"], (0, 3, 1, 2))
        with rasterio.open(STACK) as src:
            profile = {**src.profile, "count": 13, "dtype": "uint16", "nodata": None}
        if case == "series-s2-uint8":
            scenes, profile["dtype"] = np.clip(scenes / 12, 0, 255).astype("uint8"), "uint8"
        if case == "series-s2-no-crs":
            profile["crs"] = None
        paths = []
        for k, values in enumerate(scenes):
            if case == "series-s2-date-elsewhere" and k == 4:
                tr = profile["transform"]
                profile["transform"] = Affine(tr.a, tr.b, tr.c + 50_000, tr.d, tr.e, tr.f)
            paths.append(write(t / f"S2_2017{3 + 2 * k:02d}15.tif", values, base=STACK,
                               descriptions=list(S2L1C_BANDS), **profile))  # fmt: skip
        needle = {"series-s2-uint8": "8-bit", "series-s2-date-elsewhere": "does not overlap",
                  "series-s2-no-crs": "no coordinate reference system"}[case]  # fmt: skip
        return ["classify-series", "--stack", *paths, "--out", env.out / "o.tif"], refuse(needle)
    # --- arguments
    arguments = {
        "batch-0": (["--batch", "0"], "--batch must be 1 or more"),
        "batch-negative": (["--batch", "-1"], "--batch must be 1 or more"),
        "tile-0": (["--tile", "0"], "--tile must be 16 or more"),
        "tile-not-multiple-of-16": (["--tile", "100"], "multiple of 16"),
        "threads-negative": (["--threads", "-1"], "--threads must be 1 or more"),
        "overlap-negative": (["--overlap", "-1"], "--overlap must be 0 or more"),
        "overlap-too-big": (["--tile", "64", "--overlap", "40"], "overlap below half"),
        "batch-not-a-number": (["--batch", "four"], "whole number"),
        "provider-unknown": (["--provider", "tpu"], "invalid choice"),
        # the locked engine CI tests is the CPU build (requirements/runtime.lock): no CUDA in it
        "provider-cuda-absent": (["--provider", "cuda"], "CUDA is not available in this engine"),
    }
    if case in arguments:
        extra, needle = arguments[case]
        return env.flood(S1_SAMPLE, *extra), refuse(needle)
    if case == "threads-huge":
        return env.flood(S1_SAMPLE, "--threads", "100000"), ok("capped at the", ref)
    # --- damaged and unusual rasters
    if case == "truncated-cog":  # header first, tiles after: opens, then fails while reading
        from rasterio.shutil import copy as copy_raster

        copy_raster(S1_SAMPLE, t / "cog.tif", driver="COG")
        data = (t / "cog.tif").read_bytes()
        (t / "cut.tif").write_bytes(data[: int(len(data) * 0.6)])
        return env.flood(t / "cut.tif", "--tile", "64", "--overlap", "0"), refuse(
            "cannot be read (truncated or damaged?)"
        )
    if case == "truncated-tiff":
        data = S1_SAMPLE.read_bytes()
        (t / "cut.tif").write_bytes(data[: int(len(data) * 0.6)])
        return env.flood(t / "cut.tif"), refuse("not a raster GDAL can read")
    if case == "vrt-missing-source":
        write_vrt(t / "x.vrt", S1_SAMPLE)
        (t / "x.vrt").write_text((t / "x.vrt").read_text().replace(str(S1_SAMPLE), str(t / "gone.tif")))
        return env.flood(t / "x.vrt"), refuse("does not exist")
    if case == "pre-event-other-units":
        pre = write(t / "pre_linear.tif", (10 ** (db / 10)).astype("float32"))
        return env.flood(S1_SAMPLE, "--pre-event", pre), Expect("change", "pre_linear.tif: linear")
    if case in ("pre-event-20m", "pre-event-40m"):
        factor = 2 if case == "pre-event-20m" else 4
        _, p, _ = _sample()
        with rasterio.open(S1_SAMPLE) as src:
            coarse = src.read(
                out_shape=(2, 512 // factor, 512 // factor), resampling=rasterio.enums.Resampling.average
            )
        pre = write(
            t / f"pre{factor}.tif", coarse.astype("float32"), transform=p["transform"] * Affine.scale(factor)
        )
        if case == "pre-event-40m":
            return env.flood(S1_SAMPLE, "--pre-event", pre), refuse("at most 2.5 is compared")
        return env.flood(S1_SAMPLE, "--pre-event", pre), ok("may show as new flood")
    if case == "pre-event-is-s1":
        return env.flood(S1_SAMPLE, "--pre-event", S1_SAMPLE), refuse("same file as the S1 raster")
    if case == "empty-file":
        (t / "empty.tif").write_bytes(b"")
        return env.flood(t / "empty.tif"), refuse("not a raster")
    if case == "s1-is-folder":
        (t / "dir.tif").mkdir()
        return env.flood(t / "dir.tif"), refuse("folder")
    if case == "s1-all-nodata":
        return env.flood(write(t / "nan.tif", np.full_like(db, np.nan, dtype="float32"))), refuse(
            "no valid pixels"
        )
    raise AssertionError(f"no builder for case {case}")


@pytest.fixture
def env(tmp_path, threshold_model, fusion_model, tmp_path_factory):
    s2_model = make_model(tmp_path / "s2_model.onnx", [s2_spec()], task="land_cover", name="s2_threshold")
    return Env(tmp_path, threshold_model, fusion_model, s2_model)


def _run(args, capsys):
    code = main([str(a) for a in args] + ["--json", "--progress", "none"])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _classes(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


GROUPS = ["s1_units", "s2_bands", "geometry", "model", "series", "arguments", "rasters"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("case", [c for g in GROUPS for c in ids(g)])
def test_hostile_input(case, env, capsys):
    args, expect = build(case, env)
    capsys.readouterr()  # output of reference runs made by the builder
    before = snapshot(env.out)
    code, err, out = _run(args, capsys)
    if expect.kind == "refuse":
        assert code == 2, (err, out[:300])
        assert len(err) == 1 and err[0].startswith("contrasat: error: "), err
        assert expect.needle in err[0], err[0]
        assert snapshot(env.out) == before, "a refused job must leave no file"
        return
    assert code == 0, err
    summary = json.loads(out)
    notes = " | ".join(n["text"] for n in summary["notes"])
    if expect.needle and expect.kind in ("ok", "nan", "bowtie"):
        assert expect.needle in notes, notes
    classes = _classes(summary["outputs"]["classes"])
    if expect.reference is not None and expect.kind == "ok":
        valid = (expect.reference != 255) | (classes != 255)
        differ = float(np.mean(classes[valid] != expect.reference[valid]))
        assert differ <= expect.tolerance, f"{differ:.4%} of pixels differ from the map of the original units"
    if expect.kind == "ok" and expect.needle is None:
        assert not [n for n in summary["notes"] if "convert" in n["text"] or "scaled" in n["text"]], notes
    if expect.kind == "areas":
        _check_areas(summary, expect.needle, env)
    if expect.kind == "bowtie":
        mapped = classes != 255
        h, w = mapped.shape
        # both lobes (left and right triangles of the bow tie) are mapped, the waist region is the only gap
        assert mapped[h // 2, w // 8] and mapped[h // 2, w - 1 - w // 8]
    if expect.kind == "nan":
        ref = expected_classes(S1_SAMPLE)
        assert (classes == 255).sum() > (ref == 255).sum()
    if expect.kind == "change":  # the same scene before and after: all water is permanent, none is new
        assert expect.needle in notes, notes
        assert (classes == 2).any() and not (classes == 1).any()
    if expect.kind == "partial":
        left, right = classes[:, :100], classes[:, -60:]
        assert (left != 255).mean() > 0.9 and (right == 255).all()


def _check_areas(summary: dict, crs: str, env: Env) -> None:
    """True areas: the water area of the EPSG:4326 original (not x1.62 in web mercator); CSV = summary = polygons."""
    from contrasat.models.pipeline import map_floods

    assert summary["crs"] == crs
    water = summary["class_area_km2"]["water"]
    reference = map_floods(S1_SAMPLE, env.tmp / "ref.tif", model=env.model).class_area_km2["water"]
    assert water == pytest.approx(reference, rel=0.02)
    with open(summary["outputs"]["statistics"], newline="") as fh:
        rows = {r["name"]: float(r["area_km2"]) for r in csv.DictReader(fh)}
    assert rows["water"] == pytest.approx(water, abs=1e-6)
    with fiona.open(summary["outputs"]["polygons"]) as src:
        polygons = sum(f["properties"]["area_km2"] for f in src if f["properties"]["class"] == 1)
    assert polygons == pytest.approx(water, rel=1e-4)
