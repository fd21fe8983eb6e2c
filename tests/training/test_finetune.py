"""`contrasat finetune` on a real chip: polygons drawn from its real label mask, the model it writes, and
every refusal (labels outside, one class, too few pixels, unknown classes, no torch)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os

import numpy as np
import pytest
import rasterio
import torch
from contrasat.cli import main as cli_main
from contrasat.models.card import read_card
from contrasat.models.errors import ModelError
from contrasat.models.registry import FINETUNE_BASE, resolve_model
from contrasat.training.finetune.base_weights import _check, load_base
from contrasat.training.finetune.job import METHOD, FinetuneConfig, run_finetune
from contrasat.training.finetune.label_draw import draw_polygons, write_labels
from contrasat.training.finetune.labels import read_labels, split_regions
from hostile_cases import ids
from shapely.geometry import box, mapping


@pytest.fixture(scope="module")
def finetuned(chip, polygons, tmp_path_factory):
    """The CLI run once: labels written in Web Mercator (not the raster's CRS), a few steps."""
    s1, _, _, crs = chip
    folder = tmp_path_factory.mktemp("finetune")
    labels = write_labels(polygons, crs, folder / "my labels.gpkg", dst_crs="EPSG:3857")
    out = folder / "mine.onnx"
    argv = ["finetune", "--raster", str(s1), "--labels", str(labels), "--out", str(out), "--steps", "30",
            "--progress", "json", "--json"]  # fmt: skip
    torch.set_num_threads(1)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli_main(argv)
    events = [json.loads(line) for line in stderr.getvalue().splitlines() if line.startswith("{")]
    return code, out, labels, events, json.loads(stdout.getvalue())


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli_main([*argv, "--progress", "none"])
    return code, capsys.readouterr().err


def test_cli_writes_a_model_whose_card_records_base_labels_and_metrics(finetuned):
    code, out, labels, _, _ = finetuned
    assert code == 0 and out.is_file()
    card = read_card(out)
    assert card.name == "mine" and card.task == "flood"
    assert card.training["method"] == METHOD == "fine-tuned on user labels"
    module, _, name = card.training["code"].rpartition(".")  # the card names code that exists
    assert getattr(importlib.import_module(module), name) is run_finetune
    assert card.training["base_model"]["name"] == FINETUNE_BASE  # the default flood model itself
    assert card.inputs[0].mean == read_card(resolve_model(FINETUNE_BASE, "flood")).inputs[0].mean
    lab = card.training["labels"]
    assert lab["file"] == labels.name and lab["field"] == "class"
    polygons = {c: lab["train"][c]["polygons"] + lab["heldout"][c]["polygons"] for c in ("water", "dry")}
    assert polygons == {"water": 4, "dry": 4}
    assert all(
        lab["heldout"][c]["polygons"] == 1 and lab["heldout"][c]["pixels"] > 0 for c in ("water", "dry")
    )
    user = card.metrics["user_labels"]
    assert "held back by region" in user["split"]
    assert set(user["water_iou"]) == {"finetuned", "base"}
    assert all(0.0 <= v <= 1.0 for v in user["water_iou"].values())
    assert out.with_name("mine_curve.png").stat().st_size > 1000


def test_finetuned_model_maps_the_scene_through_map_floods(finetuned, chip, tmp_path, capsys):
    _, out, _, _, _ = finetuned
    s1, label, _, _ = chip
    flood = tmp_path / "flood.tif"
    code, err = _cli(["map-floods", "--s1", str(s1), "--model", str(out), "--out", str(flood)], capsys)
    assert code == 0, err
    with rasterio.open(flood) as ds:
        classes = ds.read(1)
    assert set(np.unique(classes).tolist()) <= {0, 1, 255}
    keep = label >= 0
    assert np.mean((classes[keep] == 1) == (label[keep] == 1)) > 0.8  # a working flood map, not noise


def test_loaded_base_weights_match_onnx_runtime():
    for name in ("flood_s1_contrastive", "flood_s1_unet"):
        path = resolve_model(name, "flood")
        net, card = load_base(path)
        assert card.name == name and _check(path, net) < 1e-4
    with pytest.raises(ModelError, match="cannot fine-tune"):
        load_base(resolve_model("flood_vh_threshold", "flood"))


def test_edge_rule_and_points(chip, tmp_path):
    """A 10x10-pixel square keeps its 8x8 interior (edge 1) or all 100 pixels (edge 0); a point one pixel."""
    s1, _, transform, crs = chip
    card = read_card(resolve_model("flood_s1_contrastive", "flood"))
    x0, y0 = transform * (40, 40)
    x1, y1 = transform * (50, 50)
    water = (mapping(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))), 1)
    xa, ya = transform * (120, 120)
    dry = (mapping(box(xa, ya - 30 * abs(transform.e), xa + 30 * transform.a, ya)), 0)
    path = write_labels([water, dry], crs, tmp_path / "sq.geojson", dst_crs=crs)
    pixels = {e: read_labels([s1], path, "class", card, edge=e).count(1)[1] for e in (0, 1)}
    assert pixels == {0: 100, 1: 64}
    doc = json.loads(path.read_text())  # add one point of each class (GeoJSON may mix geometry types)
    for cls, (c, r) in ((1, (60.5, 60.5)), (0, (200.5, 200.5))):
        point = {"type": "Point", "coordinates": list(transform * (c, r))}
        doc["features"].append(
            {"type": "Feature", "geometry": point, "properties": {"class": ["dry", "water"][cls]}}
        )
    path.write_text(json.dumps(doc))
    found = read_labels([s1], path, "class", card, edge=1)
    assert sorted(r.n_pixels for r in found.regions) == [1, 1, 64, 28 * 28]


def test_validation_is_held_back_by_polygon(chip, polygons, tmp_path):
    s1, _, _, crs = chip
    card = read_card(resolve_model("flood_s1_contrastive", "flood"))
    found = read_labels([s1], write_labels(polygons, crs, tmp_path / "l.geojson"), "class", card)
    train, val = split_regions(found, 0.25, np.random.default_rng(0))
    assert {id(r) for r in train}.isdisjoint(id(r) for r in val)
    assert len(train) + len(val) == len(found.regions) and {r.cls for r in val} == {0, 1}
    single = [r for r in found.regions if r.cls == 0][:1] + [r for r in found.regions if r.cls == 1]
    found.regions = single  # one dry polygon: it cannot be held back
    assert split_regions(found, 0.25, np.random.default_rng(0))[1] == []


def test_label_raster_and_kept_state_never_worse_than_base(chip, tmp_path):
    """The chip's own label raster as labels; the kept weights score no worse on held-back regions."""
    s1, label, _, _ = chip
    path = tmp_path / "label.tif"
    with rasterio.open(s1) as ds:
        profile = {**ds.profile, "count": 1, "dtype": "int16", "nodata": -1}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(label[None].astype(np.int16))
    torch.set_num_threads(1)
    cfg = FinetuneConfig(steps=20, eval_every=5, batch=4)
    result = run_finetune(
        "flood_s1_unet", [str(s1)], str(path), str(tmp_path / "r.onnx"), cfg=cfg, curve=False
    )
    h = result.history
    assert h["eval_step"][0] == 0 and result.best_step in h["eval_step"]
    kept = h["eval_loss"][h["eval_step"].index(result.best_step)]
    assert kept == min(h["eval_loss"]) <= h["eval_loss"][0]
    assert read_card(result.output).training["base_model"]["name"] == "flood_s1_unet"


def _labels(tmp_path, chip, polygons, name="l.geojson", **kw):
    return write_labels(polygons, chip[3], tmp_path / name, **kw)


def test_labels_outside_the_raster_are_refused(chip, polygons, tmp_path, capsys):
    from shapely.affinity import translate
    from shapely.geometry import shape

    far = [(mapping(translate(shape(g), xoff=5.0)), c) for g, c in polygons]  # 5 degrees east
    labels = _labels(tmp_path, chip, far)
    code, err = _cli(
        ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")],
        capsys,
    )
    assert code == 2 and "lie outside the raster" in err and not (tmp_path / "o.onnx").exists()


def test_one_class_only_is_refused(chip, polygons, tmp_path, capsys):
    labels = _labels(tmp_path, chip, [p for p in polygons if p[1] == 1])
    code, err = _cli(
        ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")],
        capsys,
    )
    assert code == 2 and "only one class (water)" in err


def test_too_few_pixels_are_refused(chip, polygons, tmp_path, capsys):
    _, _, transform, _ = chip
    x, y = transform * (30, 30)
    tiny = (
        mapping(box(x, y - 3 * abs(transform.e), x + 3 * transform.a, y)),
        1,
    )  # 3x3 px: 1 after the edge rule
    labels = _labels(tmp_path, chip, [tiny] + [p for p in polygons if p[1] == 0])
    code, err = _cli(
        ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")],
        capsys,
    )
    assert code == 2 and "too few labelled pixels of class water" in err


def test_unknown_class_names_and_missing_field_are_refused(chip, polygons, tmp_path, capsys):
    import fiona

    labels = _labels(tmp_path, chip, polygons)
    with fiona.open(labels, "a") as sink:
        sink.write({"geometry": polygons[0][0], "properties": {"class": "lake"}})
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")]
    code, err = _cli(argv, capsys)
    assert code == 2 and "lake" in err and "water/1" in err
    code, err = _cli([*argv, "--field", "kind"], capsys)
    assert code == 2 and "no field 'kind'" in err


def test_numeric_classes_are_accepted(chip, polygons, tmp_path):
    card = read_card(resolve_model("flood_s1_contrastive", "flood"))
    labels = _labels(tmp_path, chip, polygons, names=False)
    found = read_labels([chip[0]], labels, "class", card)
    assert found.count(1)[0] == 4 and found.count(0)[0] == 4


def test_threshold_base_and_missing_torch_are_refused(chip, polygons, tmp_path, capsys, monkeypatch):
    labels = _labels(tmp_path, chip, polygons)
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")]
    code, err = _cli([*argv, "--base", "flood_vh_threshold"], capsys)
    assert code == 2 and "cannot fine-tune" in err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    code, err = _cli(argv, capsys)
    assert (
        code == 2
        and err.strip() == "contrasat: error: contrasat finetune needs torch: pip install contrasat[train]"
    )


def test_output_must_not_overwrite_an_input(chip, polygons, tmp_path, capsys):
    labels = _labels(tmp_path, chip, polygons)
    code, err = _cli(
        ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(labels)], capsys
    )
    assert code == 2 and ".onnx" in err
    copy = tmp_path / "base.onnx"
    copy.write_bytes(resolve_model("flood_s1_contrastive", "flood").read_bytes())
    before = copy.read_bytes()
    argv = [
        "finetune",
        "--base",
        str(copy),
        "--raster",
        str(chip[0]),
        "--labels",
        str(labels),
        "--out",
        str(copy),
    ]
    code, err = _cli(argv, capsys)
    assert code == 2 and "overwrite an input" in err and copy.read_bytes() == before


def test_progress_protocol_and_json_summary(finetuned):
    """The engine protocol the plugin reads: rising progress, then one `done` naming the model written."""
    code, out, _, events, summary = finetuned
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert code == 0 and len(fractions) >= 10 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert events[-1]["event"] == "done" and events[-1]["result"]["output"] == str(out) == summary["output"]
    assert set(summary["heldout_water_iou"]) == {"finetuned", "base"}


def test_tiled_prediction_matches_one_pass_inside_tiles():
    """Large held-back regions are predicted tile by tile; with context the result matches a single pass."""
    from contrasat.training.finetune import predict

    net, _ = load_base(resolve_model("flood_s1_contrastive", "flood"))
    x = np.random.default_rng(0).normal(size=(2, 200, 136)).astype(np.float32)
    whole = predict.predict_water(net, x)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(predict, "TILE", 64)
        tiled = predict.predict_water(net, x)
    assert tiled.shape == (200, 136) and np.max(np.abs(tiled - whole)) < 1e-3


def test_labels_over_two_rasters(floods_root, tmp_path):
    """One label file over two real chips in different places: each polygon lands on the raster it covers."""
    card = read_card(resolve_model("flood_s1_contrastive", "flood"))
    drawn, rasters = [], []
    for name in ("Spain_7370579", "India_900498"):
        with rasterio.open(floods_root / "LabelHand" / f"{name}_LabelHand.tif") as ds:
            drawn += draw_polygons(ds.read(1), ds.transform, 4, np.random.default_rng(1))
            crs = ds.crs
        rasters.append(floods_root / "S1Hand" / f"{name}_S1Hand.tif")
    found = read_labels(rasters, write_labels(drawn, crs, tmp_path / "both.gpkg"), "class", card)
    by_raster = {r: sum(g.raster == r for g in found.regions) for r in {g.raster for g in found.regions}}
    assert by_raster == {"Spain_7370579_S1Hand.tif": 4, "India_900498_S1Hand.tif": 4}


@pytest.mark.parametrize("case", ids("finetune"))
def test_hostile_finetune(case, chip, polygons, tmp_path, capsys):
    labels = _labels(tmp_path, chip, polygons)
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx"),
            "--steps", "2", "--json"]  # fmt: skip
    if case == "finetune-threads-huge":
        code = cli_main([*argv, "--threads", "100000", "--progress", "none"])
        summary = json.loads(capsys.readouterr().out)
        assert code == 0 and (tmp_path / "o.onnx").is_file()
        cores = os.cpu_count() or 1
        assert any(f"capped at the {cores} cores" in n["text"] for n in summary["notes"]), summary["notes"]
        assert torch.get_num_threads() <= cores
    elif case == "finetune-threads-zero":
        code, err = _cli([*argv, "--threads", "0"], capsys)
        assert code == 2 and err.strip().startswith("contrasat: error:") and "threads" in err, err
        assert not (tmp_path / "o.onnx").exists()
    else:
        raise AssertionError(f"no builder for case {case}")
