"""The dock's Fine-tune tab: water/dry polygons drawn into a scratch layer, the engine command it builds, and
real fine-tunes on a Sentinel-1 chip (new model in the pickers, base and new maps side by side, the CLI's
refusal as one message, cancel leaving no model)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from canvas_helpers import click
from contrasat.models.card import read_card
from contrasat.models.errors import ModelError
from contrasat.models.registry import FINETUNE_BASE
from contrasat.plugin.cards import WEIGHTS_DIR as WEIGHTS
from contrasat.plugin.cards import bundled_cards
from contrasat.plugin.engine_env import training_hint
from contrasat.plugin.label_drawing import SCRATCH_NAME
from contrasat.plugin.launcher import request_command
from contrasat.plugin.tasks import JobTask
from contrasat.training.finetune.base_weights import load_base
from contrasat.training.finetune.label_draw import draw_polygons, write_labels
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt

FLOODS = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "sen1floods11"
REPO = Path(__file__).resolve().parents[2]
CHIP = "Spain_7370579"
S1_CHIP = FLOODS / "S1Hand" / f"{CHIP}_S1Hand.tif"


@pytest.fixture
def dock(plugin, tmp_path, models_dir):
    instance = plugin.show_dock("finetune")
    instance.output_dir.setFilePath(str(tmp_path / "out"))
    assert instance.tabs.currentWidget() is instance.panels["finetune"]
    return instance


@pytest.fixture
def chip(qgis_iface, add_raster):
    """The real S1 chip as the project's active layer, the canvas on it."""
    layer = add_raster(S1_CHIP, "S1 chip", qgis_iface)
    canvas = qgis_iface.mapCanvas()
    canvas.resize(600, 600)
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    canvas.refresh()
    return layer


def hand_labels(tmp_path: Path, n: int = 8, water_only: bool = False) -> QgsVectorLayer:
    """Polygons drawn from the chip's hand labels (as an analyst would), in EPSG:3857, as a project layer."""
    with rasterio.open(FLOODS / "LabelHand" / f"{CHIP}_LabelHand.tif") as ds:
        polygons = draw_polygons(ds.read(1), ds.transform, n, np.random.default_rng(3))
        crs = ds.crs
    if water_only:
        polygons = [p for p in polygons if p[1] == 1]
    path = write_labels(
        polygons, crs, tmp_path / ("water.gpkg" if water_only else "labels.gpkg"), dst_crs="EPSG:3857"
    )
    layer = QgsVectorLayer(str(path), path.stem, "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def draw(tool, extent, corners: list[tuple[float, float]]) -> list[QgsPointXY]:
    """Click the corners (fractions of `extent`), then right click to close the polygon; the clicked points."""
    at = lambda fx, fy: QgsPointXY(  # noqa: E731
        extent.xMinimum() + fx * extent.width(), extent.yMinimum() + fy * extent.height()
    )
    landed = [click(tool, at(fx, fy)) for fx, fy in corners]
    click(tool, at(*corners[0]), Qt.RightButton)
    return landed


def new_layers(before: list) -> list:
    return [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr not in before]


def test_draw_tool_puts_water_and_dry_polygons_in_a_scratch_layer(dock, chip, qgis_iface):
    panel = dock.panels["finetune"]
    canvas = qgis_iface.mapCanvas()
    assert panel.checked_layer_ids() == [chip.id()]  # the S1 layer is ticked by itself
    panel.draw_water.click()
    tool = panel.drawer.tool
    assert canvas.mapTool() is tool and panel.draw_water.isChecked() and not panel.draw_dry.isChecked()
    extent = chip.extent()
    square = draw(tool, extent, [(0.1, 0.1), (0.3, 0.1), (0.3, 0.3), (0.1, 0.3)])
    draw(tool, extent, [(0.5, 0.1), (0.7, 0.1), (0.6, 0.3)])
    assert canvas.mapTool() is tool, "the tool stays on for the next polygon"
    panel.draw_dry.click()
    assert canvas.mapTool() is tool and panel.draw_dry.isChecked() and not panel.draw_water.isChecked()
    draw(tool, extent, [(0.6, 0.6), (0.9, 0.6), (0.9, 0.9), (0.6, 0.9)])
    panel.draw_dry.click()  # unchecking hands the canvas back
    assert canvas.mapTool() is not tool and not panel.draw_dry.isChecked()

    (scratch,) = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.name() == SCRATCH_NAME]
    assert scratch.providerType() == "memory" and scratch.crs() == chip.crs()
    features = list(scratch.getFeatures())
    assert [f["class"] for f in features] == ["water", "water", "dry"]
    assert features[0].geometry().equals(QgsGeometry.fromPolygonXY([square]))
    assert features[0].geometry().area() == pytest.approx(0.04 * extent.area(), rel=0.3)
    assert panel.label_layer.currentLayer() is scratch and panel.class_field.currentField() == "class"
    assert panel.draw_status.text().startswith("2 water and 1 dry polygon(s)")
    assert {c.value() for c in scratch.renderer().categories()} == {"water", "dry"}


def test_panel_builds_the_finetune_command(dock, chip, tmp_path, models_dir):
    panel = dock.panels["finetune"]
    labels = hand_labels(tmp_path)
    panel.set_label_layer(labels, "class")
    panel.steps.setValue(7)
    panel.frozen.setChecked(True)
    assert panel.model_picker.model_path() == WEIGHTS / f"{FINETUNE_BASE}.onnx"  # the CLI's default
    listed = [panel.model_picker.combo.itemText(i) for i in range(panel.model_picker.combo.count())]
    assert "flood_s1s2_fusion" not in listed  # two inputs: not a base the CLI fine-tunes
    assert "flood_vh_threshold" not in listed and "flood_s1_unet" in listed  # a fixed rule has no weights
    request = panel.collect(tmp_path / "out", None, None)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = request_command(request, scratch, python="/engine/python")
    assert command == [
        "/engine/python", "-m", "contrasat", "finetune", "--raster", str(S1_CHIP),
        "--labels", str(scratch / "labels.geojson"), "--field", "class",
        "--out", str(models_dir / "S1_chip_finetuned.onnx"),
        "--base", str(WEIGHTS / f"{FINETUNE_BASE}.onnx"), "--steps", "7", "--frozen", "--progress", "json",
    ]  # fmt: skip
    doc = json.loads((scratch / "labels.geojson").read_text(encoding="utf-8"))
    assert doc["crs"]["properties"]["name"] == "EPSG:3857"
    assert len(doc["features"]) == labels.featureCount() == 8
    assert {f["properties"]["class"] for f in doc["features"]} == {"water", "dry"}
    assert set(doc["features"][0]["properties"]) == {"class"}


def test_missing_inputs_are_named_before_a_run(dock, chip, plugin):
    panel = dock.panels["finetune"]
    assert dock.run_panel(panel) is None
    assert "Choose a label layer, or draw water and dry polygons" in dock.message.text()
    panel.set_checked([])
    assert dock.run_panel(panel) is None and "Tick the Sentinel-1 layer" in dock.message.text()
    assert not [t for t in plugin._tasks if isinstance(t, JobTask)]


def test_finetune_on_a_real_chip_adds_the_model_and_both_maps(dock, plugin, chip, tmp_path, models_dir,
                                                              wait_task, messages):  # fmt: skip
    panel = dock.panels["finetune"]
    panel.set_label_layer(hand_labels(tmp_path), "class")
    panel.steps.setValue(10)
    before = list(QgsProject.instance().mapLayers().values())
    panel.run_button.click()  # the tab's own Fine-tune button
    task = dock.task
    assert task.request.job == "finetune"
    outcome = wait_task(task)
    assert outcome.succeeded, outcome.error
    model = models_dir / "S1_chip_finetuned.onnx"
    assert Path(outcome.result["output"]) == model and model.is_file()
    card = read_card(model)
    assert card.training["method"] == "fine-tuned on user labels"
    assert card.training["base_model"]["name"] == FINETUNE_BASE
    assert outcome.progress and outcome.progress[-1] == pytest.approx(1.0)
    assert dock.message.text().startswith(f"Fine-tuned model saved: {model}. Held-back water IoU")

    # the new model is offered in the pickers, and Map floods selects it
    flood_picker = dock.panels["map_floods"].model_picker
    assert flood_picker.model_path() == model
    assert flood_picker.combo.currentText() == "S1_chip_finetuned (your model)"
    assert panel.model_picker.combo.findData(str(model)) >= 0

    # then the scene is mapped with the base model, then with the new one
    for _ in range(2):
        QgsApplication.processEvents()
        maps = [t for t in plugin._tasks if isinstance(t, JobTask) and t.request.job != "finetune"]
        assert len(maps) == 1, "the two maps run one after the other"
        assert wait_task(maps[0]).succeeded
    added = {lyr.name(): lyr for lyr in new_layers(before)}
    base_name = f"Flood map (S1 chip, base {FINETUNE_BASE})"
    tuned_name = "Flood map (S1 chip, fine-tuned S1_chip_finetuned)"
    assert set(added) == {base_name, tuned_name}
    for name in (base_name, tuned_name):
        layer = added[name]
        assert isinstance(layer, QgsRasterLayer) and layer.renderer().type() == "paletted"
        assert [c.label for c in layer.renderer().classes()] == ["dry", "water"]
        assert layer.customProperty("contrasat/output", False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.tif")) == [
        "S1_chip_flood_base.tif",
        "S1_chip_flood_finetuned.tif",
    ]
    with rasterio.open(out / "S1_chip_flood_finetuned.tif") as ds:
        water = ds.read(1) == 1
    assert 0 < water.mean() < 1
    assert not messages(Qgis.Critical)
    assert panel.checked_layer_ids() == [chip.id()]
    listed = [panel.rasters.item(i).text() for i in range(panel.rasters.count())]
    assert listed == ["S1 chip"], "the maps are never offered as inputs"


def test_the_engines_refusal_is_one_message_and_nothing_is_written(dock, plugin, chip, tmp_path, models_dir,
                                                                  wait_task, messages):  # fmt: skip
    panel = dock.panels["finetune"]
    panel.set_label_layer(hand_labels(tmp_path, water_only=True), "class")
    panel.steps.setValue(5)
    before = list(QgsProject.instance().mapLayers().values())
    outcome = wait_task(dock.run_panel(panel))
    assert not outcome.succeeded and not outcome.cancelled
    assert "only one class" in outcome.error and "\n" not in outcome.error
    assert dock.message.text() == outcome.error
    (critical,) = messages(Qgis.Critical)
    assert critical.startswith("Contrasat:Fine-tune failed:") and "only one class" in critical
    QgsApplication.processEvents()
    assert not [t for t in plugin._tasks if isinstance(t, JobTask)], "no map was started"
    assert new_layers(before) == [] and not list(models_dir.glob("*.onnx"))


def test_cancel_stops_the_finetune_and_leaves_no_model(dock, plugin, chip, tmp_path, models_dir, wait_task,
                                                       monkeypatch, messages):  # fmt: skip
    original = JobTask._on_progress

    def press_cancel(self, fraction):
        original(self, fraction)
        if len(self.outcome.progress) == 1:
            dock.cancel_button.click()  # from the worker thread: QgsTask.cancel is thread-safe

    monkeypatch.setattr(JobTask, "_on_progress", press_cancel)
    panel = dock.panels["finetune"]
    panel.set_label_layer(hand_labels(tmp_path), "class")
    panel.steps.setValue(2000)
    before = list(QgsProject.instance().mapLayers().values())
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.cancelled, outcome.error
    assert dock.message.text() == "Cancelled." and dock.run_button.isEnabled()
    QgsApplication.processEvents()
    assert not [t for t in plugin._tasks if isinstance(t, JobTask)], "no map was started"
    assert new_layers(before) == []
    assert not models_dir.exists() or list(models_dir.iterdir()) == []  # no model, no partial file, no curve
    assert not messages(Qgis.Critical)


def test_an_engine_without_the_training_packages_gets_one_clear_message():
    python = "/profile/contrasat/engine-env/bin/python"
    for error in (
        "contrasat finetune needs torch: pip install contrasat[train]",  # the CLI's own check
        "the engine stopped unexpectedly (exit code 1):\nTraceback ...\nModuleNotFoundError: No module named 'scipy'",
    ):
        hint = training_hint(error, python)
        assert hint.startswith("Fine-tuning needs ") and python in hint and "\n" not in hint
        assert "Settings" in hint and "docs/qgis.md" in hint
    assert "needs scipy" in training_hint("No module named 'scipy.ndimage'", python)
    assert "no training code" in training_hint("No module named 'contrasat.training'", python)
    # anything else is the engine's own message, unchanged: a broken runtime must not be blamed on torch
    for error in ("No module named 'rasterio'", "the labels hold only one class (water)"):
        assert training_hint(error, python) == error


def test_models_in_the_users_folder_are_listed_after_the_bundled_ones(plugin, models_dir, threshold_model):
    models_dir.mkdir()
    mine = models_dir / "my_rule.onnx"
    mine.write_bytes(threshold_model.read_bytes())
    (models_dir / ".half.123.partial.onnx").write_bytes(threshold_model.read_bytes()[:100])  # being written
    dock = plugin.show_dock()
    flood = dock.panels["map_floods"].model_picker
    items = [(flood.combo.itemText(i), flood.combo.itemData(i)) for i in range(flood.combo.count())]
    bundled = [c for _, c in bundled_cards() if c.task == "flood"]
    assert items[-1] == ("vh_threshold (your model)", str(mine)) and len(items) == len(bundled) + 1
    assert flood.model_path() != mine  # the default stays selected
    base = dock.panels["finetune"].model_picker
    assert base.combo.findData(str(mine)) < 0  # no trained network behind it: not a base to fine-tune
    assert not base.set_model_path(mine) and "cannot be used here" in base.card_view.toPlainText()
    land = dock.panels["land_cover"].model_picker
    assert land.combo.findData(str(mine)) < 0


def test_the_base_picker_offers_exactly_the_bundled_models_the_engine_can_fine_tune(dock):
    picker = dock.panels["finetune"].model_picker
    offered = {Path(picker.combo.itemData(i)).name for i in range(picker.combo.count())}
    for path, card in bundled_cards():
        if card.task != "flood" or len(card.inputs) != 1:
            assert path.name not in offered, card.name
            continue
        try:
            load_base(path)
            loads = True
        except ModelError:
            loads = False
        assert (path.name in offered) == loads, f"{card.name}: offered {path.name in offered}, loads {loads}"
    assert {"flood_s1_unet.onnx", "flood_s1_contrastive.onnx"} <= offered


def test_only_sentinel1_layers_are_offered(dock, chip, qgis_iface, add_raster):
    """The 'Sentinel-1 layers' list leaves out an S2 image and a one-band NDVI-like raster (issue 20)."""
    from runtime_helpers import S2_SAMPLE

    add_raster(S2_SAMPLE, "S2 image", qgis_iface)
    add_raster(REPO / "resources" / "series" / "slovenia_ndvi_stack.tif", "NDVI stack", qgis_iface)
    panel = dock.panels["finetune"]
    listed = [panel.rasters.item(i).text() for i in range(panel.rasters.count())]
    assert listed == ["S1 chip"]


def _wait_training_check(panel) -> None:
    deadline = time.monotonic() + 90
    while panel.training_task is not None:
        assert time.monotonic() < deadline, "the training-support check did not end"
        QgsApplication.processEvents()
        time.sleep(0.01)


@pytest.mark.parametrize("present", [False, True])
def test_opening_the_tab_checks_for_training_support_and_offers_it(dock, monkeypatch, present):
    from contrasat.plugin import deps_dialog, engine_install

    panel = dock.panels["finetune"]
    _wait_training_check(panel)  # the check the fixture's opening of the tab started, on the real engine
    asked = []
    monkeypatch.setattr(engine_install, "training_installed", lambda timeout=60: asked.append(1) or present)
    opened = []
    monkeypatch.setattr(deps_dialog, "open_installer", lambda *args, training=False: opened.append(training))
    panel.training_present = None
    dock.tabs.setCurrentWidget(dock.panels["map_floods"])
    assert panel.training_task is None, "checked only when the Fine-tune tab opens"
    dock.tabs.setCurrentWidget(panel)  # before any drawing or Run
    _wait_training_check(panel)
    assert asked == [1] and panel.training_present is present
    assert panel.training_box.isVisibleTo(dock) is not present
    if not present:
        assert "torch" in panel.training_label.text()
        panel.training_button.click()
        assert opened == [True], "the installer opens with training support ticked"
    dock.tabs.setCurrentWidget(dock.panels["map_floods"])
    dock.tabs.setCurrentWidget(panel)
    assert (panel.training_task is None) is present, "a yes is not asked again; a no is, after the install"
    _wait_training_check(panel)


def test_an_installation_ending_while_the_tab_is_open_checks_again(dock, monkeypatch):
    """After "Add training support…" the open tab asks the engine again at once: the offer goes away
    without leaving and reopening the tab; a closed tab waits until it opens."""
    from types import SimpleNamespace

    from contrasat.plugin import engine_install
    from contrasat.plugin.engine_env import EngineStatus, engine_python

    ended = SimpleNamespace(error="", status=EngineStatus(ok=True, python=engine_python()))  # the task
    panel = dock.panels["finetune"]
    dock.tabs.setCurrentWidget(panel)
    _wait_training_check(panel)
    present = []
    monkeypatch.setattr(engine_install, "training_installed", lambda timeout=60: bool(present))
    panel.training_present = None
    panel.check_training()
    _wait_training_check(panel)
    assert panel.training_present is False and panel.training_box.isVisibleTo(dock)
    present.append(True)  # the installer added torch
    engine_install.install_events().finished.emit(ended)
    assert panel.training_task is not None, "checked again at once"
    _wait_training_check(panel)
    assert panel.training_present is True and not panel.training_box.isVisibleTo(dock)
    dock.tabs.setCurrentWidget(dock.panels["map_floods"])
    panel.training_present = None
    engine_install.install_events().finished.emit(ended)
    assert panel.training_task is None, "the tab is not open: checked when it opens"


def test_guide_names_the_base_the_tab_starts_from():
    """docs/qgis.md (shipped as the plugin's help) says which base model the Fine-tune tab selects."""
    guide = (REPO / "docs" / "qgis.md").read_text(encoding="utf-8")
    section = guide[guide.index("### Fine-tune") :]
    base_item = section[section.index("- **Base model**") :].split("\n- ", 1)[0]
    assert f"default `{FINETUNE_BASE}`" in " ".join(base_item.split()), base_item


def test_the_tab_starts_from_the_default_flood_model_and_shows_no_command_line_option(dock, chip):
    """What the analyst reads on the Fine-tune tab (labels, buttons, group titles, tooltips, the base's card)
    names the default flood model as the base and never a command-line option."""
    import re

    from contrasat.models.registry import DEFAULTS
    from qgis.PyQt.QtWidgets import QAbstractButton, QGroupBox, QLabel, QTextBrowser, QWidget

    panel = dock.panels["finetune"]
    assert FINETUNE_BASE == DEFAULTS["flood"] and panel.model_picker.card().name == FINETUNE_BASE
    assert panel.model_picker.combo.currentText() == FINETUNE_BASE
    texts = []
    for widget in [panel, *panel.findChildren(QWidget)]:
        texts.append(widget.toolTip())
        if isinstance(widget, QLabel | QAbstractButton):
            texts.append(widget.text())
        elif isinstance(widget, QGroupBox):
            texts.append(widget.title())
        elif isinstance(widget, QTextBrowser):
            texts.append(widget.toPlainText())
    shown = "\n".join(t for t in texts if t)
    assert FINETUNE_BASE in shown and "Base model" in shown
    assert not re.findall(r"(?<![\w-])--[a-z][\w-]*", shown)
