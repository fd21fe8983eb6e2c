"""Hostile review of `contrasat finetune` on the default flood model: what an analyst's mistakes and a
cancel must never do (real Sen1Floods11 window, polygons drawn from its hand labels)."""

from __future__ import annotations

import fiona
import numpy as np
import pytest
import rasterio
from contrasat.cli import main as cli_main
from contrasat.models.card import read_card
from contrasat.training.finetune import plots
from contrasat.training.finetune.job import FinetuneConfig, run_finetune
from contrasat.training.finetune.label_draw import write_labels
from shapely.geometry import mapping, shape

CHIP = "Spain_7370579"


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli_main([*argv, "--progress", "none"])
    return code, capsys.readouterr().err


def test_cancel_while_the_outputs_are_written_leaves_the_earlier_model(chip, polygons, tmp_path, monkeypatch):
    """The plugin cancels by SIGTERM, which the CLI turns into KeyboardInterrupt. Arriving after training,
    while the curve was drawn, it used to leave the earlier model replaced by the new one (and its old
    curve beside it) although the run reported 'cancelled'."""
    labels = write_labels(polygons, chip[3], tmp_path / "labels.geojson")
    out, curve = tmp_path / "mine.onnx", tmp_path / "mine_curve.png"
    out.write_bytes(b"the analyst's earlier model")
    curve.write_bytes(b"its curve")

    def cancelled(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "plot_finetune_curve", cancelled)
    with pytest.raises(KeyboardInterrupt):
        run_finetune(None, [str(chip[0])], str(labels), str(out), cfg=FinetuneConfig(steps=4, eval_every=2))
    assert out.read_bytes() == b"the analyst's earlier model" and curve.read_bytes() == b"its curve"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.geojson", "mine.onnx", "mine_curve.png"]

    monkeypatch.undo()  # a run that ends replaces both, together
    run_finetune(None, [str(chip[0])], str(labels), str(out), cfg=FinetuneConfig(steps=4, eval_every=2))
    assert read_card(out).name == "mine" and curve.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.geojson", "mine.onnx", "mine_curve.png"]


def test_water_drawn_only_under_dry_polygons_is_named_as_an_overlap(chip, polygons, tmp_path, capsys):
    """Every water polygon lies inside a dry one (a pond drawn in a field): both classes were labelled, the
    overlap removed all water pixels; the message used to say 'label both dry and water'."""
    pixel = chip[2].a
    drawn = [(g, c) for g, c in polygons if c == 0]
    drawn += [(mapping(shape(g).buffer(3 * pixel)), 0) for g, c in polygons if c == 1]
    drawn += [(g, c) for g, c in polygons if c == 1]
    labels = write_labels(drawn, chip[3], tmp_path / "ponds.geojson")
    out = tmp_path / "o.onnx"
    code, err = _cli(
        ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(out)], capsys
    )
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert "water" in err and "overlap" in err and "label both" not in err


@pytest.mark.parametrize("value", [None, "", "  "])
def test_an_empty_class_value_is_named_in_the_users_words(chip, polygons, tmp_path, capsys, value):
    """A feature digitised in QGIS without its class (NULL) or with a blank one: the message said 'None' or
    showed nothing at all."""
    labels = write_labels(polygons, chip[3], tmp_path / "l.gpkg")
    with fiona.open(labels, "a") as sink:
        sink.write({"geometry": polygons[0][0], "properties": {"class": value}})
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")]
    code, err = _cli(argv, capsys)
    assert code == 2 and "None" not in err and "empty" in err and "1 feature" in err


def test_the_runtimes_warnings_stay_warnings(chip, polygons, tmp_path, capsys):
    """The raster is read with the runtime's rules, and what map-floods reports as a warning (here: this
    window's dry-land level is uncertain) the fine-tune reported as a plain note, so the plugin, which lists
    warnings apart, never showed it as one."""
    import json

    labels = write_labels(polygons, chip[3], tmp_path / "l.geojson")
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx"),
            "--steps", "4", "--json", "--progress", "none"]  # fmt: skip
    assert cli_main(argv) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    levels = {n["level"] for n in notes if "level is uncertain" in n["text"]}
    assert levels == {"warning"}


def test_a_model_written_unchanged_from_its_base_says_so(floods_root, tmp_path, capsys):
    """A label raster's big patches train and its many small ones are held back; none of the fine-tuned
    states beat the base model on them, so the base itself (step 0) is kept and written: the same weights
    under a new name. The summary said only 'kept step 0'."""
    import json

    s1 = floods_root / "S1Hand" / f"{CHIP}_S1Hand.tif"
    labels = floods_root / "LabelHand" / f"{CHIP}_LabelHand.tif"
    argv = ["finetune", "--raster", str(s1), "--labels", str(labels), "--out", str(tmp_path / "o.onnx"),
            "--steps", "20", "--json", "--progress", "none"]  # fmt: skip
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_step"] == 0
    said = [n for n in summary["notes"] if "unchanged" in n["text"]]
    assert len(said) == 1 and said[0]["level"] == "warning"


@pytest.mark.parametrize(
    "option", [["--seed", "-1"], ["--holdout", "1"], ["--holdout", "2"], ["--holdout", "-0.5"],
               ["--holdout", "nan"], ["--distill", "-1"], ["--distill", "nan"], ["--distill", "inf"]],
)  # fmt: skip
def test_out_of_range_settings_are_refused_in_one_line(chip, polygons, tmp_path, capsys, option):
    """`--seed -1` ended in a traceback; a held-back share of 1 or more or below 0 and a negative or
    non-finite distillation weight were run (a negative weight pushes the map away from the base model)."""
    labels = write_labels(polygons, chip[3], tmp_path / "l.geojson")
    out = tmp_path / "o.onnx"
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(out), *option]
    code, err = _cli(argv, capsys)
    assert code == 2 and err.startswith("contrasat: error: ") and err.count("\n") == 1 and option[0] in err
    assert not out.exists()


def test_no_share_held_back_is_not_blamed_on_single_polygons(chip, polygons, tmp_path, capsys):
    labels = write_labels(polygons, chip[3], tmp_path / "l.geojson")
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx"),
            "--holdout", "0", "--steps", "4", "--progress", "none"]  # fmt: skip
    code = cli_main(argv)
    said = capsys.readouterr().out
    assert code == 0 and "no polygons held back" in said and "single polygon" not in said


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_a_label_file_without_features_says_so(chip, tmp_path, capsys, suffix):
    """An empty layer (saved before drawing) was reported as having no class field (GeoJSON) or as labels
    lying outside the raster (GeoPackage)."""
    labels = tmp_path / f"empty{suffix}"
    schema = {"geometry": "Polygon", "properties": {"class": "str"}}
    with fiona.open(
        labels, "w", driver="GPKG" if suffix == ".gpkg" else "GeoJSON", crs="EPSG:4326", schema=schema
    ):
        pass
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(labels), "--out", str(tmp_path / "o.onnx")]
    code, err = _cli(argv, capsys)
    assert code == 2 and "no features" in err


def test_a_probability_raster_is_not_read_as_labels(chip, tmp_path, capsys):
    """map-floods' probabilities (float p(dry), p(water)) given as the label raster: its first band was cut
    to whole numbers (p(dry) = 0.7 became 0, 'dry'... and 'water' only where p(dry) was exactly 1)."""
    probs = tmp_path / "probs.tif"
    assert _cli(["map-floods", "--s1", str(chip[0]), "--out", str(tmp_path / "c.tif"),
                 "--probabilities", str(probs)], capsys)[0] == 0  # fmt: skip
    argv = ["finetune", "--raster", str(chip[0]), "--labels", str(probs), "--out", str(tmp_path / "o.onnx")]
    code, err = _cli(argv, capsys)
    assert code == 2 and "probs.tif" in err and "only one class" not in err


def test_a_float_label_raster_with_whole_values_and_nan_is_read(chip, tmp_path, capsys):
    """0.0 / 1.0 labels with NaN for unlabelled (how a float raster says 'no value') are labels."""
    _, label, transform, crs = chip
    values = np.where(label < 0, np.nan, label).astype("float32")
    path = tmp_path / "float_labels.tif"
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="float32", crs=crs, transform=transform) as ds:  # fmt: skip
        ds.write(values, 1)
    from contrasat.models.registry import resolve_model
    from contrasat.training.finetune.labels import read_labels

    found = read_labels([chip[0]], path, "class", read_card(resolve_model(None, "flood")))
    assert found.count(1)[1] > 0 and found.count(0)[1] > 0


def test_overlapping_polygons_of_one_class_never_share_pixels_across_regions(chip, polygons, tmp_path):
    """A water polygon drawn again over an earlier one (a sloppy edge redrawn): each was its own region, so
    one could train and its copy be held back, scoring the model on the very pixels it trained on. Polygons
    of one class that overlap are one region, as a label raster's connected patch is."""
    from contrasat.models.registry import resolve_model
    from contrasat.training.common.metrics import IGNORE
    from contrasat.training.finetune.labels import read_labels

    pixel = chip[2].a
    redrawn = [(mapping(shape(g).buffer(2 * pixel)), c) for g, c in polygons if c == 1][:2]
    labels = write_labels(polygons + redrawn, chip[3], tmp_path / "redrawn.geojson")
    found = read_labels([chip[0]], labels, "class", read_card(resolve_model(None, "flood")))
    owner: dict[tuple[int, int], int] = {}
    for k, region in enumerate(found.regions):
        rows, cols = np.nonzero(region.label != IGNORE)
        for rc in zip(rows + int(region.window.row_off), cols + int(region.window.col_off), strict=True):
            assert owner.setdefault(rc, k) == k, (
                f"pixel {rc} in {found.regions[owner[rc]].name} and {region.name}"
            )
    assert len(found.regions) == 8 and found.count(1)[0] == 4


def test_held_back_pixels_are_predicted_as_the_map_predicts_them(chip, polygons, tmp_path, capsys):
    """Held-back polygons are scored on the map the model will make: each region's window is read as the
    runtime reads around an area (edges on its pixel grid). The windows used to start wherever a polygon's
    bounds fell, so the context network of the default model saw other surroundings than in the map, and
    the same polygons drawn in another CRS were scored differently."""
    from contrasat.models.registry import resolve_model
    from contrasat.training.common.metrics import IGNORE
    from contrasat.training.finetune.base_weights import load_base
    from contrasat.training.finetune.labels import read_labels
    from contrasat.training.finetune.predict import predict_water

    flood = tmp_path / "flood.tif"
    assert _cli(["map-floods", "--s1", str(chip[0]), "--out", str(flood)], capsys)[0] == 0
    with rasterio.open(flood) as ds:
        mapped = ds.read(1) == 1
    net, card = load_base(resolve_model(None, "flood"))
    for crs in ("EPSG:4326", "EPSG:3857"):
        labels = write_labels(polygons, chip[3], tmp_path / f"l{crs[5:]}.geojson", dst_crs=crs)
        for region in read_labels([chip[0]], labels, "class", card).regions:
            rows, cols = np.nonzero(region.label != IGNORE)
            water = predict_water(net, region.x)[rows, cols] > 0.5
            in_map = mapped[rows + int(region.window.row_off), cols + int(region.window.col_off)]
            assert np.array_equal(water, in_map), (crs, region.name)
