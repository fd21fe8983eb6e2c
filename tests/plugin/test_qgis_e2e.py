"""The plugin as users run it, in the real `qgis` binary under Xvfb (scripts/qgis_e2e.py does the run).

Fresh profile, plugin installed from the built zip, QGIS's own /usr/bin/python3 world, the engine installed
through the plugin's dependency dialog from a wheel folder prepared with `pip download`, then every job
(toolbar action, drawn AOI, dock, time series, Processing, cancel), and last the Fine-tune tab: it offers
training support, whose "Add training support…" installs torch into the engine from the same wheel folder,
and a 20-step fine-tune runs from the dock. The rasters it wrote are compared with the CLI's own output on
the same inputs, run on the engine environment the plugin created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from qgis_e2e import LAND_COVER_CLASSES, SAMPLE, WINDOW, land_cover_squares, run_e2e  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SERIES = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
SUCCESS, WARNING, CRITICAL = 3, 1, 2  # Qgis.MessageLevel values in the report
OWN_CLASSIFIER = "S2_sample_classes.onnx"  # saved from the Land cover tab before the fine-tune runs
# About three minutes on 2 cores with the wheel folder cached, training support's install included (the
# first `pip download` adds its own time).
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("qgis_e2e")
    report = run_e2e(work)
    assert report.get("returncode") == 0 and not report.get("error"), report.get("error") or report.get(
        "stdout_tail"
    )
    assert not report.get("driver_errors"), report.get("driver_errors")
    print(f"\nreal-QGIS end-to-end run: {report['elapsed_s']} s; steps {report['steps']}")
    return report


def cli(report: dict, tmp_path: Path, *args: str) -> Path:
    """Run the CLI on the engine environment the plugin installed, with the zip-installed package."""
    profile = Path(report["profile"])
    python = profile / "contrasat" / "engine-env" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(profile / "python" / "plugins")
    out = tmp_path / "cli.tif"
    done = subprocess.run(
        [str(python), "-m", "contrasat", *args, "--out", str(out)], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def same_raster(a: str | Path, b: str | Path) -> np.ndarray:
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        assert ra.crs == rb.crs and ra.transform == rb.transform and ra.shape == rb.shape
        data = ra.read(1)
        np.testing.assert_array_equal(data, rb.read(1))
    return data


def layer(report_layers: list[dict], name: str) -> dict:
    return next(lyr for lyr in report_layers if lyr["name"] == name)


def test_runs_in_qgis_own_python_with_the_zip_and_no_runtime_library_loaded(e2e):
    assert e2e["python"] == "/usr/bin/python3" or e2e["python"].endswith("/qgis")
    assert not e2e["sys_path_has_venv"]
    assert e2e["plugin_file"] == f"{e2e['profile']}/python/plugins/contrasat/__init__.py"
    assert e2e["loaded_in_qgis"] == []  # no rasterio/shapely/onnxruntime... in QGIS's process


def test_engine_installed_through_the_plugin_from_the_wheel_folder(e2e):
    (hint,) = [m["text"] for m in e2e["startup_messages"]]
    assert "not installed" in hint and "Check dependencies" in hint
    assert e2e["banner_before_install"][0] and "not installed" in e2e["banner_before_install"][1]
    install = e2e["install"]
    assert install["succeeded"], install["status"] + "\n".join(install["log_lines"][-20:])
    log = "\n".join(install["log_lines"])
    assert "-m venv" in log and "--no-index --find-links" in log and "Successfully installed" in log
    assert "rasterio-1.4.4" in log and "-m contrasat.models.engine_check" in log
    assert "--require-hashes" in log and "runtime.lock" in log  # every package pinned and hash-checked
    assert "a test map ran in" in log  # the check ran a real job on the new engine
    assert (Path(e2e["profile"]) / "contrasat" / "engine-env" / "bin" / "python").is_file()
    assert e2e["banner_after_install"] == [False, ""]  # usable at once, no restart
    assert e2e["install_log_kept"]
    during = e2e["during_install"]  # in the background, the dock following it
    assert during["label"].startswith("Installing the engine") and during["progress_shown"]
    assert not during["run_enabled"] and not during["install_enabled"]


def test_broken_engine_is_detected_by_name(e2e):
    broken = e2e["broken_engine"]
    assert "onnxruntime" in broken["dialog_text"] and "install the engine again" in broken["dialog_text"]
    assert "engine ready" not in broken["dialog_text"]
    assert "onnxruntime" in broken["banner"] and not broken["run_enabled"]
    assert e2e["repaired"] == [True, True]


def test_map_floods_action_matches_the_cli(e2e, tmp_path):
    assert e2e["flood_dialog_layer"] == "S1 sample"  # not the active S2 layer
    flood = layer(e2e["flood"]["layers"], "Flood map (S1 sample)")
    assert flood["legend"] == [[0, "dry", 0], [1, "water", 255]] and flood["output"]
    texts = [m["text"] for m in e2e["flood"]["messages"] if m["level"] == SUCCESS]
    assert any("Flooded area:" in t and "on CPU)" in t for t in texts), texts
    assert not any("ExecutionProvider" in m["text"] for m in e2e["flood"]["messages"])
    assert not [m for m in e2e["flood"]["messages"] if m["level"] == CRITICAL]
    # the only warnings are the engine's own notes on its input (the sample's dry-land VH level is uncertain),
    # shown as warnings, not as a passing info
    warnings = [m["text"] for m in e2e["flood"]["messages"] if m["level"] == WARNING]
    assert warnings and all(t.startswith("Contrasat: S1 raster Spain_7370579_S1Hand.tif: ") for t in warnings)
    data = same_raster(
        flood["source"], cli(e2e, tmp_path, "map-floods", "--s1", str(SAMPLE / "Spain_7370579_S1Hand.tif"))
    )
    assert 0 < (data == 1).mean() < 1
    assert [row[0] for row in e2e["flood"]["areas"]] == ["dry", "water", "Total"]


def test_land_cover_in_the_drawn_rectangle_matches_the_cli(e2e, tmp_path):
    assert e2e["land_cover_preselected"] == "S2 sample"
    aoi = e2e["aoi"]
    assert aoi["crs"] == "EPSG:4326" and aoi["geometry"]["type"] == "Polygon"
    lc = layer(e2e["land_cover"]["layers"], "Land cover (S2 sample)")
    s2 = SAMPLE / "Spain_7370579_S2Hand.tif"
    data = same_raster(lc["source"], cli(e2e, tmp_path, "land-cover", "--s2", str(s2), "--aoi", aoi["file"]))
    ring = np.array(aoi["geometry"]["coordinates"][0])
    with rasterio.open(lc["source"]) as out, rasterio.open(s2) as full:
        assert out.width < full.width * 0.6 and out.height < full.height * 0.6, "clipped to the AOI"
        pixel = full.res[0]
        left, bottom, right, top = out.bounds
        assert ring[:, 0].min() - pixel <= left and right <= ring[:, 0].max() + pixel
        assert ring[:, 1].min() - pixel <= bottom and top <= ring[:, 1].max() + pixel
        assert out.transform.a == full.transform.a and (left - full.bounds.left) / pixel == pytest.approx(
            round((left - full.bounds.left) / pixel)
        )  # on the S2 grid
    assert (data != 255).mean() > 0.9
    names = [row[0] for row in e2e["land_cover"]["areas"]]
    assert len(lc["legend"]) == 10 and names[-1] == "Total" and 1 < len(names) < 10  # mapped classes only
    assert "no data" not in names and "0.000" not in [row[1] for row in e2e["land_cover"]["areas"]]
    assert e2e["land_cover"]["message"].startswith("Done:")


def test_land_cover_in_my_classes_drawn_with_the_mouse(e2e, tmp_path):
    import json

    from contrasat.models.card import read_card

    assert e2e["fixed_model_note"].startswith("landcover_s2 learned its fixed classes from 1 labelled site;")
    classes = list(LAND_COVER_CLASSES)
    drawn = e2e["own_labels"]
    assert drawn["layer"] == "Land-cover training polygons" and drawn["field"] == "class"
    assert drawn["buttons"] == classes and not drawn["tool_active"]
    assert drawn["status"].startswith("3 water, 3 vegetation and 3 bare polygon(s) drawn")
    features = drawn["document"]["features"]
    assert [f["properties"]["class"] for f in features] == [c for c in classes for _ in range(3)]
    assert [f["properties"]["color"] for f in features] == [
        LAND_COVER_CLASSES[c] for c in classes for _ in range(3)
    ]
    s2 = SAMPLE / "Spain_7370579_S2Hand.tif"
    with rasterio.open(s2) as ds:  # every square is where it was drawn: 11 x 11 pixels of the S2 grid
        to_pixel = ~ds.transform
    for feature, square in zip(features, land_cover_squares(3), strict=True):
        ring = np.array(feature["geometry"]["coordinates"][0])
        corners = [to_pixel * xy for xy in ring[:4]]
        expected = [to_pixel * xy for xy in square["corners"]]
        np.testing.assert_allclose(corners, expected, atol=0.35)

    run = e2e["own_classes"]
    assert run["error"] is None and run["result"], run
    (lc,) = [lyr for lyr in run["layers"] if lyr["name"] == "Land cover (S2 sample, my classes)"]
    assert sorted(entry[1] for entry in lc["legend"]) == sorted(classes) and lc["output"]
    labels = tmp_path / "labels.geojson"
    labels.write_text(json.dumps(drawn["document"]), encoding="utf-8")
    data = same_raster(
        lc["source"], cli(e2e, tmp_path, "land-cover", "--s2", str(s2), "--labels", str(labels))
    )
    assert set(np.unique(data).tolist()) == {0, 1, 2}  # every class on the map
    assert run["areas"][-1][0] == "Total" and sorted(row[0] for row in run["areas"][:-1]) == sorted(classes)
    assert all(float(row[1]) > 0 for row in run["areas"])
    assert "Accuracy on held-back labels" in run["accuracy"] and all(
        f"<td>{c}</td>" in run["accuracy"] for c in classes
    )
    assert run["save_visible"] and run["message"].startswith("Done:")
    assert not [m for m in run["messages"] if m["level"] == CRITICAL]

    assert OWN_CLASSIFIER in run["models"]
    assert "every land-cover model list offers it" in run["saved_message"]
    assert "S2_sample_classes (your model)" in run["land_cover_models"]
    assert not [name for name in run["flood_models"] if "S2_sample" in name]
    card = read_card(Path(e2e["profile"]) / "contrasat" / "models" / "S2_sample_classes.onnx")
    assert sorted(c.name for c in card.classes) == sorted(classes)
    print(f"\nland cover in my classes in real QGIS: {run['seconds']} s")


def test_series_and_processing_match_the_cli(e2e, tmp_path):
    (series,) = e2e["series"]["layers"]
    series_cli = cli(e2e, tmp_path, "classify-series", "--stack", str(SERIES))
    same_raster(series["source"], series_cli)
    names = [
        row[0] for row in e2e["series"]["areas"]
    ]  # classes with an area, in legend order, then the total
    assert names[-1] == "Total" and names[:-1] == [e[1] for e in series["legend"] if e[1] in names]
    proc = e2e["processing"]
    flood_dock = layer(e2e["final_layers"], "Flood map (S1 sample)")["source"]
    same_raster(proc["map_floods"]["OUTPUT"], flood_dock)
    assert proc["map_floods"]["FLOODED_KM2"] > 0 and Path(proc["map_floods"]["STATISTICS"]).is_file()
    same_raster(proc["land_cover"]["OUTPUT"], layer(e2e["final_layers"], "Land cover (S2 sample)")["source"])
    same_raster(proc["classify_series"]["OUTPUT"], series_cli)


def test_cancel_half_way_leaves_nothing(e2e):
    cancel = e2e["cancel"]
    assert cancel["cancelled"] and cancel["error"] is None
    assert cancel["progress_at_cancel"] and 0 < cancel["progress_at_cancel"][-1] < 1
    assert cancel["files"] == [] and cancel["message"] == "Cancelled." and cancel["areas"] == []
    assert cancel["messages"][0]["text"].endswith("Map floods was cancelled; nothing was written.")
    assert not [m for m in cancel["messages"] if m["level"] == CRITICAL or "failed" in m["text"].lower()]
    # QGIS's own end-of-task notice (its threshold set to 0 s for this run) does not say "Task failed"; it
    # says the task ended, cancelled, and the plugin takes it off: one message says so
    # (an earlier task's notice may come in the same window on a loaded machine: only this task's counts)
    notices = [text for text in cancel["pushed"] if text.startswith("Task ") and "map floods" in text]
    assert notices == ["Task complete: Contrasat: map floods (S1 sample): cancelled"], cancel["pushed"]
    assert not [text for text in cancel["pushed"] if text.startswith("Task failed")], cancel["pushed"]
    assert [m["text"] for m in cancel["messages"] if "cancel" in m["text"].lower()] == [
        "Contrasat: Map floods was cancelled; nothing was written."
    ]


def test_screenshots_of_the_dock_after_map_floods_and_the_aoi_land_cover(e2e):
    from qgis.PyQt.QtGui import QImage

    for name in (
        "qgis_map_floods.png",
        "qgis_land_cover_aoi.png",
        "qgis_land_cover_own.png",
        "qgis_finetune.png",
    ):
        image = QImage(str(Path(e2e["screenshots"]) / name))
        assert (image.width(), image.height()) == WINDOW, name


def test_finetune_in_the_dock_with_drawn_labels(e2e, tmp_path):
    from contrasat.models.card import read_card
    from contrasat.models.registry import FINETUNE_BASE

    labels = e2e["finetune_labels"]
    assert (
        labels["layer"] == "Fine-tune labels"
        and labels["provider"] == "memory"
        and labels["field"] == "class"
    )
    assert [f["class"] for f in labels["features"]] == ["water"] * 4 + ["dry"] * 4
    assert not labels["tool_active"] and labels["status"].startswith("4 water and 4 dry polygon(s)")
    with rasterio.open(SAMPLE / "Spain_7370579_LabelHand.tif") as ds:  # every square is where it was drawn
        hand, to_pixel = ds.read(1), ~ds.transform
    for feature in labels["features"]:
        x0, y0, x1, y1 = feature["bbox"]
        c0, r0 = (round(v) for v in to_pixel * (x0, y1))
        c1, r1 = (round(v) for v in to_pixel * (x1, y0))
        assert (c1 - c0, r1 - r0) == (11, 11), feature
        assert (hand[r0:r1, c0:c1] == (1 if feature["class"] == "water" else 0)).all(), feature

    # before training support was added: refused with one message, nothing written
    refused = e2e["finetune_no_torch"]
    assert refused["started"] and refused["error"].startswith(
        "Fine-tuning needs torch in the Contrasat engine"
    )
    assert "\n" not in refused["error"] and refused["message"] == refused["error"]
    (critical,) = [m["text"] for m in refused["messages"] if m["level"] == CRITICAL]
    assert critical == f"Contrasat: Fine-tune failed: {refused['error']}" and refused["models"] == [
        OWN_CLASSIFIER
    ]

    run = e2e["finetune"]  # on the managed engine, once training support was added to it
    assert run["error"] is None and run["result"], run
    model = Path(run["result"]["output"])
    assert model.parent == Path(e2e["profile"]) / "contrasat" / "models" == Path(run["models_dir"])
    assert run["models"] == ["S1_sample_finetuned.onnx", "S1_sample_finetuned_curve.png", OWN_CLASSIFIER]
    card = read_card(model)
    assert card.training["method"] == "fine-tuned on user labels"
    assert card.training["base_model"]["name"] == FINETUNE_BASE
    counts = card.training["labels"]
    assert counts["train"]["water"]["polygons"] + counts["heldout"]["water"]["polygons"] == 4
    assert 0 < run["progress"][0] and run["progress"][-1] == pytest.approx(1.0)
    assert run["message"].startswith(f"Fine-tuned model saved: {model}. Held-back water IoU")
    assert run["map_floods_model"] == ["S1_sample_finetuned (your model)", str(model)]
    assert "S1_sample_finetuned (your model)" in run["base_choices"]
    assert "flood_vh_threshold" not in run["base_choices"]

    maps = {lyr["name"]: lyr for lyr in run["layers"]}
    base = maps[f"Flood map (S1 sample, base {FINETUNE_BASE})"]
    tuned = maps["Flood map (S1 sample, fine-tuned S1_sample_finetuned)"]
    assert len(maps) == 2 and base["output"] and tuned["output"]
    assert base["legend"] == tuned["legend"] == [[0, "dry", 0], [1, "water", 255]]
    assert not [m for m in run["messages"] if m["level"] == CRITICAL]
    assert not [name for name in run["raster_choices"] if "map" in name.lower()]  # results are no inputs
    assert "S1 sample" in run["raster_choices"]
    s1 = str(SAMPLE / "Spain_7370579_S1Hand.tif")
    same_raster(tuned["source"], cli(e2e, tmp_path, "map-floods", "--s1", s1, "--model", str(model)))
    (tmp_path / "cli.tif").unlink()
    same_raster(base["source"], cli(e2e, tmp_path, "map-floods", "--s1", s1, "--model", FINETUNE_BASE))
    print(f"\nfine-tune in real QGIS: {run['seconds']} s, with both maps {run['seconds_with_maps']} s")


def test_training_support_added_from_the_finetune_tab_from_the_wheel_folder(e2e):
    offer = e2e["training_offer"]  # the engine as installed has no torch: said when the tab opens
    assert offer["present"] is False and offer["shown"], offer
    assert "torch" in offer["text"] and offer["button"] == "Add training support…"
    install = e2e["training_install"]
    log = "\n".join(install["log_lines"])
    assert install["succeeded"], install["status"] + "\n" + "\n".join(install["log_lines"][-20:])
    assert install["training_ticked"] and "training support (torch CPU, scikit-learn, scipy)" in log
    assert "train-engine.lock" in log and "--require-hashes" in log and "--no-index --find-links" in log
    # torch came from the chosen wheel folder (the run has no pip configuration pointing anywhere else)
    wheelhouse = e2e["wheelhouse"]
    assert f"Processing {wheelhouse}/torch-2.13.0+cpu" in log, log[-3000:]
    assert "Successfully installed" in log and "torch-2.13.0+cpu" in log
    assert "a test map ran in" in log  # the engine's check ran a real job after the install
    during = install["during"]  # in the background, the dock following it
    assert during["label"].startswith("Installing the engine") and during["progress_shown"]
    assert not during["run_enabled"] and not during["install_enabled"] and not during["modal"]
    after = install["after"]  # the open tab checks again at once: the offer is gone, Run is back
    assert after == {"present": True, "offer_shown": False, "banner_shown": False, "run_enabled": True}
    added = install["engine_mb_after"] - install["engine_mb_before"]
    assert added > 100, install  # torch's CPU build alone is several hundred MB installed
    print(
        f"\ntraining support from the wheel folder: {install['seconds']} s, engine "
        f"{install['engine_mb_before']} MB -> {install['engine_mb_after']} MB (+{added:.0f} MB)"
    )
