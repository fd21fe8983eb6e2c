"""The dock end to end: panels, band mapping and its override, drawn/selected AOI, outputs, summary, cancel."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio
from contrasat.plugin.launcher import JobRequest
from contrasat.plugin.settings import RunSettings, save_settings
from contrasat.plugin.tasks import JobTask
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsTask,
    QgsVectorLayer,
)
from qgis.gui import QgsMapMouseEvent, QgsMessageBarItem
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from runtime_helpers import expected_classes


@pytest.fixture
def dock(plugin, tmp_path):
    """The plugin's dock, writing into tmp_path/out."""
    instance = plugin.show_dock()
    instance.output_dir.setFilePath(str(tmp_path / "out"))
    return instance


def _new_layers(before):
    return [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr not in before]


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _click(tool, kind, point, button=Qt.LeftButton):
    """Send a mouse event at map coordinates `point` to a map tool, as the canvas would."""
    canvas = tool.canvas()
    pixel = canvas.getCoordinateTransform().transform(point)
    event = QgsMapMouseEvent(canvas, kind, QPoint(round(pixel.x()), round(pixel.y())), button)
    handler = {
        QEvent.MouseButtonPress: tool.canvasPressEvent,
        QEvent.MouseMove: tool.canvasMoveEvent,
        QEvent.MouseButtonRelease: tool.canvasReleaseEvent,
    }[kind]
    handler(event)
    return tool.toMapCoordinates(event.pos())  # where the click landed, after rounding to a pixel


def _canvas_on(layer, canvas):
    canvas.resize(600, 600)
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    canvas.refresh()


def _inner(extent: QgsRectangle, lo=0.25, hi=0.75):
    x = lambda f: extent.xMinimum() + f * extent.width()  # noqa: E731
    y = lambda f: extent.yMinimum() + f * extent.height()  # noqa: E731
    return x, y, QgsPointXY(x(lo), y(hi)), QgsPointXY(x(hi), y(lo))


def test_dock_has_the_jobs_side_by_side(dock, plugin):
    titles = [dock.tabs.tabText(i) for i in range(dock.tabs.count())]
    assert titles == ["Map floods", "Land cover", "Time series", "Fine-tune"]
    assert set(dock.panels["map_floods"].layer_combos) == {"primary", "s2", "pre_event"}
    assert set(dock.panels["land_cover"].layer_combos) == {"primary", "s1"}
    assert plugin.named_actions["Panel"].isChecked() == dock.isVisible()
    plugin.named_actions["LandCover"].trigger()
    assert dock.tabs.currentWidget() is dock.panels["land_cover"]


def test_panel_action_creates_and_toggles_dock(plugin):
    assert plugin.dock is None  # built on first use: QGIS start-up reads no model card
    plugin.named_actions["Panel"].trigger()
    dock = plugin.dock
    assert dock is not None and not dock.isHidden()
    plugin.named_actions["Panel"].trigger()
    assert dock.isHidden()


def test_model_card_and_guessed_bands(dock, s1_layer, threshold_model):
    panel = dock.panels["map_floods"]
    assert panel.model_picker.set_model_path(threshold_model)
    text = panel.model_picker.card_view.toPlainText()
    for word in ("vh_threshold", "S1: VV, VH (dB)", "dry", "water", "note: test model"):
        assert word in text, word
    panel.set_layer("primary", s1_layer)
    bands = panel.band_widgets["primary"]
    assert bands.guessed == [1, 2] and bands.mapping() == [1, 2] and bands.override() is None
    assert "descriptions" in bands.status.text()
    assert [c.currentText() for c in bands.combos] == ["1: VV", "2: VH"]
    assert not panel.band_widgets["s2"].isVisibleTo(panel)  # no S2 layer: nothing to map


def test_picker_refuses_model_of_other_task(dock, lc_model):
    picker = dock.panels["map_floods"].model_picker
    assert not picker.set_model_path(lc_model)
    assert "'land_cover' model" in picker.card_view.toPlainText()


def test_land_cover_with_drawn_rectangle(dock, plugin, qgis_iface, add_raster, s2_sample, lc_model, tmp_path,
                                         wait_task, messages):  # fmt: skip
    layer = add_raster(s2_sample, "S2 sample", qgis_iface)
    canvas = qgis_iface.mapCanvas()
    _canvas_on(layer, canvas)
    panel = dock.panels["land_cover"]
    panel.use_own_classes(False)  # the tab leads with "My classes"; this run uses a model's fixed classes
    panel.model_picker.set_model_path(lc_model)
    panel.set_layer("primary", layer)
    assert panel.band_widgets["primary"].mapping() == [3, 8]  # B03, B08 of 13 described bands

    dock.aoi.rectangle_button.click()
    tool = dock.aoi.rectangle_tool
    assert canvas.mapTool() is tool
    _, _, top_left, bottom_right = _inner(layer.extent())
    _click(tool, QEvent.MouseButtonPress, top_left)
    _click(tool, QEvent.MouseMove, bottom_right)
    _click(tool, QEvent.MouseButtonRelease, bottom_right)
    assert canvas.mapTool() is not tool, "the tool hands the canvas back once the AOI is drawn"
    geometry, crs = dock.aoi.aoi()
    assert crs == "EPSG:4326" and geometry["type"] == "Polygon"
    box = dock.aoi.geometry.boundingBox()
    assert box.width() == pytest.approx(layer.extent().width() / 2, rel=0.02)

    before = list(QgsProject.instance().mapLayers().values())
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.succeeded, outcome.error
    result = outcome.result
    assert abs(result["shape"][0] - 256) <= 3 and abs(result["shape"][1] - 256) <= 3, "clipped to the AOI"
    (new,) = _new_layers(before)
    assert new.name() == "Land cover (S2 sample)"
    labels = {c.value: c.label for c in new.renderer().classes()}
    assert labels == {0: "land", 1: "water"}
    assert [dock.summary.item(i, 0).text() for i in range(dock.summary.rowCount())] == [
        "land",
        "water",
        "Total",
    ]
    statistics = result["outputs"]["statistics"]
    with open(statistics, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["land", "water"]
    assert float(rows[1]["area_km2"]) == pytest.approx(float(dock.summary.item(1, 1).text()), abs=1e-3)
    assert statistics in dock.csv_label.text()
    assert any("km²" in m for m in messages(Qgis.Success))


def test_polygon_tool_and_selected_features(dock, qgis_iface, s1_layer):
    canvas = qgis_iface.mapCanvas()
    _canvas_on(s1_layer, canvas)
    dock.aoi.polygon_button.click()
    tool = dock.aoi.polygon_tool
    x, y, _, _ = _inner(s1_layer.extent())
    clicked = [
        _click(tool, QEvent.MouseButtonRelease, QgsPointXY(x(fx), y(fy)))
        for fx, fy in ((0.2, 0.2), (0.8, 0.2), (0.5, 0.8))
    ]
    _click(tool, QEvent.MouseButtonRelease, QgsPointXY(x(0.5), y(0.5)), Qt.RightButton)  # closes
    triangle = dock.aoi.geometry
    assert triangle is not None and dock.aoi.aoi()[0]["type"] == "Polygon"
    assert triangle.equals(QgsGeometry.fromPolygonXY([clicked]))
    assert triangle.area() == pytest.approx(0.18 * s1_layer.extent().area(), rel=0.15)

    polygons = QgsVectorLayer("Polygon?crs=EPSG:3857", "fields", "memory")
    features = []
    for i in range(2):
        feature = QgsFeature()
        feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(i * 100, 0, i * 100 + 50, 50)))
        features.append(feature)
    polygons.dataProvider().addFeatures(features)
    QgsProject.instance().addMapLayer(polygons)
    qgis_iface.setActiveLayer(polygons)
    assert not dock.aoi.use_selected_features()  # nothing selected yet
    assert "No feature is selected" in dock.aoi.status.text()
    polygons.selectAll()
    dock.aoi.selection_button.click()
    geometry, crs = dock.aoi.aoi()
    assert crs == "EPSG:3857" and geometry["type"] == "MultiPolygon"
    assert dock.aoi.geometry.area() == pytest.approx(5000)
    dock.aoi.clear_button.click()
    assert dock.aoi.aoi() is None


def test_band_override_builds_the_right_input(dock, qgis_iface, add_raster, write_raster, s1_sample,
                                              threshold_model, tmp_path, wait_task):  # fmt: skip
    """Bands stored VH, VV without descriptions: the guess (storage order) is wrong, the override fixes it."""
    with rasterio.open(s1_sample) as src:
        data, transform = src.read()[::-1].copy(), src.transform
    path = tmp_path / "swapped.tif"
    with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=2, dtype="float32",
                       crs="EPSG:4326", transform=transform, nodata=float("nan")) as dst:  # fmt: skip
        dst.write(data)
    layer = add_raster(path, "swapped", qgis_iface)
    panel = dock.panels["map_floods"]
    panel.model_picker.set_model_path(threshold_model)
    panel.set_layer("primary", layer)
    bands = panel.band_widgets["primary"]
    assert bands.guessed == [1, 2]
    bands.combos[0].setCurrentIndex(2)  # VV is band 2
    bands.combos[1].setCurrentIndex(1)  # VH is band 1
    assert bands.mapping() == [2, 1] and "Manual" in bands.status.text()
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.succeeded, outcome.error
    with rasterio.open(outcome.result["outputs"]["classes"]) as out:
        np.testing.assert_array_equal(out.read(1), expected_classes(s1_sample))
    assert _files(tmp_path / "out") == ["swapped_flood.tif", "swapped_flood_areas.csv"]


def test_undescribed_bands_must_be_chosen(
    dock, qgis_iface, add_raster, write_raster, threshold_model, tmp_path
):
    path = write_raster(tmp_path / "three.tif", np.full((3, 16, 16), -12.0, np.float32))
    panel = dock.panels["map_floods"]
    panel.model_picker.set_model_path(threshold_model)
    panel.set_layer("primary", add_raster(path, "three", qgis_iface))
    bands = panel.band_widgets["primary"]
    assert bands.guessed is None and bands.mapping() is None
    assert "choose the bands" in bands.status.text()
    assert dock.run_panel(panel) is None
    assert "Choose the bands of 'three'" in dock.message.text()
    bands.combos[0].setCurrentIndex(1)
    bands.combos[1].setCurrentIndex(3)
    assert bands.override().bands == [1, 3] and bands.override().names == ["VV", "VH"]


def test_flood_with_pre_event_probabilities_and_polygons(dock, qgis_iface, add_raster, s1_sample,
                                                         threshold_model, tmp_path, wait_task):  # fmt: skip
    s1 = add_raster(s1_sample, "post", qgis_iface)
    copy = tmp_path / "pre.tif"  # the runtime refuses the event image itself as its pre-event image
    copy.write_bytes(s1_sample.read_bytes())
    pre = add_raster(copy, "pre")
    panel = dock.panels["map_floods"]
    panel.model_picker.set_model_path(threshold_model)
    panel.set_layer("primary", s1)
    panel.set_layer("pre_event", pre)
    panel.probabilities.setChecked(True)
    panel.polygons.setChecked(True)
    before = list(QgsProject.instance().mapLayers().values())
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.succeeded, outcome.error
    added = _new_layers(before)
    names = sorted(lyr.name() for lyr in added)
    assert names == ["Flood map (post)", "Flood map polygons (post)", "Flood map probability (post)"]
    flood = next(lyr for lyr in added if lyr.name() == "Flood map (post)")
    labels = [c.label for c in flood.renderer().classes()]
    assert labels == ["dry", "flood water", "permanent water"]  # styled from result.classes, not the card
    polygons = next(lyr for lyr in added if "polygons" in lyr.name())
    assert {c.label() for c in polygons.renderer().categories()} >= {"permanent water"}
    assert "area_km2" in polygons.fields().names()
    # same image on both dates: all water is permanent, none is new
    assert outcome.result["flooded_km2"] == 0 and outcome.result["class_area_km2"]["permanent water"] > 0
    # the table lists the classes with an area (not the empty 'flood water') and a total;
    # 'dry' (transparent background) has no polygon legend entry
    names = [dock.summary.item(i, 0).text() for i in range(dock.summary.rowCount())]
    assert names == ["dry", "permanent water", "Total"] and dock.summary.item(2, 2).text() == "100.0 %"
    assert "dry" not in {c.label() for c in polygons.renderer().categories()}
    probability = next(lyr for lyr in added if "probability" in lyr.name())
    assert (
        isinstance(probability, QgsRasterLayer) and probability.renderer().type() == "singlebandpseudocolor"
    )


def test_cancel_from_dock_leaves_nothing(
    dock, s1_layer, tmp_path, wait_task, monkeypatch, saved_settings, messages, qgis_iface
):
    original = JobTask._on_progress

    def press_cancel(self, fraction):
        original(self, fraction)
        if len(self.outcome.progress) == 1:
            dock.cancel_button.click()  # GUI button from the worker: QgsTask.cancel is thread-safe

    dock.summary.setRowCount(2)  # a previous run's table must not survive the cancelled one
    monkeypatch.setattr(JobTask, "_on_progress", press_cancel)
    save_settings(RunSettings(batch_size=1, tile_size=128, overlap=32))  # slow enough to cancel mid-run
    panel = dock.panels["map_floods"]
    panel.set_layer("primary", s1_layer)
    panel.probabilities.setChecked(True)
    panel.polygons.setChecked(True)
    before = list(QgsProject.instance().mapLayers().values())
    manager = QgsApplication.taskManager()
    ended = []  # what QGIS's own notice (QgisApp: "Task complete" / "Task failed" after 5 s) is made from

    def on_status(task_id, status):
        task = manager.task(task_id)
        if status in (QgsTask.Complete, QgsTask.Terminated) and task is not None:
            ended.append((status, task.description()))
            notice = QgsMessageBarItem("Task complete", task.description(), Qgis.Info)
            qgis_iface.messageBar().pushItem(notice)  # as QgisApp does (pushInfo, not kept by the stub bar)

    manager.statusChanged.connect(on_status)
    try:
        outcome = wait_task(dock.run_panel(panel))
    finally:
        manager.statusChanged.disconnect(on_status)
    assert outcome.cancelled, outcome.error
    assert _new_layers(before) == [] and _files(tmp_path / "out") == []
    assert dock.message.text() == "Cancelled." and not dock.cancel_button.isEnabled()
    assert dock.summary.rowCount() == 0 and dock.run_button.isEnabled()
    assert not messages(Qgis.Critical) and not messages(Qgis.Warning)
    # QGIS would say "Task failed" for a Terminated task: a clean cancel ends Complete, described as cancelled
    assert [status for status, _ in ended] == [QgsTask.Complete]
    assert ended[0][1].startswith("Contrasat: map floods (") and ended[0][1].endswith("): cancelled"), ended
    QgsApplication.processEvents()
    notices = [i for i in qgis_iface.messageBar().items() if i.text() == ended[0][1]]
    assert notices == [], "the plugin's own message says it already"
    dock.tabs.setCurrentWidget(dock.panels["land_cover"])  # the word of the last run does not follow
    assert dock.message.text() == ""


def test_switching_tabs_keeps_a_running_jobs_message(dock, s1_layer, wait_task, monkeypatch):
    monkeypatch.setattr(JobTask, "_on_progress", lambda self, fraction: self.cancel())
    panel = dock.panels["map_floods"]
    panel.set_layer("primary", s1_layer)
    task = dock.run_panel(panel)
    dock.tabs.setCurrentWidget(dock.panels["land_cover"])
    assert dock.message.text().startswith("Running: Contrasat: map floods")
    assert wait_task(task).cancelled and dock.message.text() == "Cancelled."


def test_errors_known_before_a_run_are_shown_before_it_starts(dock, s1_layer, saved_settings, plugin):
    panel = dock.panels["map_floods"]
    panel.set_layer("primary", s1_layer)
    fusion = next(
        i for i in range(panel.model_picker.combo.count()) if "fusion" in panel.model_picker.combo.itemText(i)
    )
    panel.model_picker.combo.setCurrentIndex(fusion)
    assert dock.run_panel(panel) is None and dock.task is None
    assert "needs a Sentinel-2 layer too: choose one in 'Sentinel-2 layer'." in dock.message.text()
    panel.model_picker.combo.setCurrentIndex(0)
    save_settings(RunSettings(tile_size=200))
    assert dock.run_panel(panel) is None
    assert "multiple of 16" in dock.message.text()
    assert not [t for t in plugin._tasks if isinstance(t, JobTask)], "nothing was started"


def test_series_action_on_selected_layers(plugin, qgis_iface, add_raster, series_stack, series_model,
                                          tmp_path, wait_task, messages):  # fmt: skip
    layer = add_raster(series_stack, "slovenia", qgis_iface)
    dock = plugin.show_dock()
    dock.output_dir.setFilePath(str(tmp_path / "out"))
    dock.panels["classify_series"].model_picker.set_model_path(series_model)
    qgis_iface.layerTreeView().selectedLayers.return_value = [layer]  # as selected in the Layers panel
    plugin.named_actions["ClassifySeries"].trigger()
    outcome = wait_task(dock.task)
    assert outcome.succeeded, outcome.error
    (new,) = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr is not layer]
    assert new.name() == "Series land cover (slovenia)"
    assert [c.label for c in new.renderer().classes()] == ["stable", "changing"]
    assert _files(tmp_path / "out") == ["slovenia_series.tif", "slovenia_series_areas.csv"]
    assert dock.summary.rowCount() == 2


def test_series_action_without_selection_explains(plugin, messages, qgis_new_project):
    assert plugin.classify_selected_layers([]) is None
    assert any("select the Sentinel-2 layers" in m for m in messages(Qgis.Critical))


def test_crs_of_drawn_aoi_follows_canvas(dock, qgis_iface):
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    dock.aoi._on_drawn(QgsGeometry.fromRect(QgsRectangle(0, 0, 10, 10)))
    assert dock.aoi.aoi()[1] == "EPSG:3857"


def test_bundled_models_listed_default_first(dock):
    from contrasat.models.registry import DEFAULTS, bundled_models

    for job, panel in dock.panels.items():
        picker = panel.model_picker
        fits = picker.accept or (lambda _card: True)  # the Fine-tune tab lists the bases it can start from
        bundled = [c.name for _, c in bundled_models() if c.task == picker.task and fits(c)]
        listed = [picker.combo.itemText(i) for i in range(picker.combo.count())]
        assert sorted(listed) == sorted(bundled), job
        if not bundled:
            assert "No bundled" in picker.card_view.toPlainText()
            assert dock.run_panel(panel) is None and "No " in dock.message.text()
    if any(c.name == DEFAULTS["flood"] for _, c in bundled_models()):
        assert dock.panels["map_floods"].model_picker.card().name == DEFAULTS["flood"]


def test_card_html_shows_nested_metrics_and_transparent_swatch():
    from contrasat.models.card import ClassInfo, ModelCard
    from contrasat.plugin.model_picker import card_html
    from runtime_helpers import s1_spec

    card = ModelCard(name="m", task="flood", inputs=[s1_spec()],
                     classes=[ClassInfo(0, "dry", "#00000000"), ClassInfo(1, "water", "#1f78b4ff")],
                     metrics={"heldout": {"water_iou": {"model": 0.632}}, "split": "chip X"})  # fmt: skip
    html = card_html(card)
    assert "heldout: water_iou model 0.632" in html and "split: chip X" in html
    assert "background:#ffffff" in html and "background:#1f78b4" in html


def test_band_mapping_is_folded_when_found_and_hidden_for_empty_slots(dock, s1_layer):
    panel = dock.panels["map_floods"]
    panel.set_layer("primary", s1_layer)
    bands = panel.band_widgets["primary"]
    assert bands.isVisibleTo(dock) and bands.rows.isHidden() and not bands.change_button.isHidden()
    bands.change_button.click()
    assert not bands.rows.isHidden()
    assert panel.band_widgets["s2"].isHidden() and panel.band_widgets["pre_event"].isHidden()


def test_an_engine_refusal_names_the_forms_label_never_a_flag(
    dock, plugin, s1_sample, tmp_path, wait_task, messages
):
    """The engine itself refuses (a tile of 24 px is no multiple of 16): the dock and the message bar say
    which setting in the form's words, without the command line's `--tile`."""
    out = tmp_path / "out" / "refused.tif"
    outcome = wait_task(plugin.start_job(JobRequest("map_floods", s1_sample, out, options={"tile": 24})))
    assert not outcome.succeeded and not outcome.cancelled
    assert "'Tile size (px)'" in outcome.error and "multiple of 16" in outcome.error
    assert "--" not in outcome.error and "argument" not in outcome.error
    assert dock.message.text() == outcome.error
    (critical,) = messages(Qgis.Critical)
    assert "--" not in critical and not out.exists()


def _status(cuda: bool):
    from contrasat.plugin.engine_env import EngineStatus, engine_python

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    return EngineStatus(ok=True, python=engine_python(), providers=providers, cuda=cuda)


def test_a_cuda_job_on_an_engine_without_cuda_is_one_message_not_a_cpu_run(
    dock, s1_layer, wait_task, saved_settings, messages, monkeypatch
):
    from contrasat.plugin import engine_env, launcher
    from contrasat.plugin.settings import NO_CUDA

    monkeypatch.setitem(engine_env._STATUS, "last", _status(cuda=False))  # a CPU-only engine was checked
    started = []
    monkeypatch.setattr(launcher, "run_engine", lambda *args, **kwargs: started.append(args))
    save_settings(RunSettings(provider="cuda"))  # chosen when a GPU engine was installed, say
    panel = dock.panels["map_floods"]
    panel.set_layer("primary", s1_layer)
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.error == NO_CUDA and not started, "no engine run, on CPU or otherwise"
    assert dock.message.text() == NO_CUDA and "--" not in NO_CUDA
    (critical,) = messages(Qgis.Critical)
    assert critical.endswith(NO_CUDA)


@pytest.mark.parametrize(
    ("provider", "status", "refused"),
    [("cuda", _status(cuda=True), False), ("cuda", None, False), ("cpu", _status(cuda=False), False),
     ("auto", _status(cuda=False), False), ("cuda", _status(cuda=False), True)],
)  # fmt: skip
def test_cuda_is_refused_only_when_the_checked_engine_lacks_it(provider, status, refused, monkeypatch):
    from contrasat.plugin import engine_env
    from contrasat.plugin.settings import cuda_refusal

    monkeypatch.setattr(engine_env, "_STATUS", {"last": status} if status else {})
    assert (cuda_refusal(RunSettings(provider=provider)) is not None) is refused


def test_default_flood_model_in_a_polygon_drawn_in_another_crs(
    dock, qgis_iface, s1_layer, wait_task, tmp_path
):
    """The analyst's flow with the default model: a polygon drawn on a Web Mercator map over an EPSG:4326
    layer; the map covers exactly the polygon's pixel window of the layer's grid, 255 (transparent) outside
    the polygon, styled and named in the user's words, with its probability and polygon layers."""
    from contrasat.models.aoi import aoi_mask, aoi_window, load_aoi
    from contrasat.models.registry import DEFAULTS
    from qgis.core import QgsCoordinateTransform

    mercator = QgsCoordinateReferenceSystem("EPSG:3857")
    QgsProject.instance().setCrs(mercator)
    canvas = qgis_iface.mapCanvas()
    canvas.resize(600, 600)
    canvas.setDestinationCrs(mercator)
    extent = QgsCoordinateTransform(s1_layer.crs(), mercator, QgsProject.instance()).transformBoundingBox(
        s1_layer.extent()
    )
    canvas.setExtent(extent)
    panel = dock.panels["map_floods"]
    assert panel.model_picker.card().name == DEFAULTS["flood"]
    panel.set_layer("primary", s1_layer)
    panel.probabilities.setChecked(True)
    panel.polygons.setChecked(True)
    dock.aoi.polygon_button.click()
    x, y, _, _ = _inner(extent)
    for fx, fy in ((0.2, 0.2), (0.8, 0.25), (0.5, 0.85)):
        _click(dock.aoi.polygon_tool, QEvent.MouseButtonRelease, QgsPointXY(x(fx), y(fy)))
    _click(dock.aoi.polygon_tool, QEvent.MouseButtonRelease, QgsPointXY(x(0.5), y(0.5)), Qt.RightButton)
    aoi = dock.aoi.aoi()
    assert aoi[1] == "EPSG:3857"

    before = list(QgsProject.instance().mapLayers().values())
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.succeeded, outcome.error
    added = {lyr.name(): lyr for lyr in _new_layers(before)}
    assert sorted(added) == [
        "Flood map (Spain_7370579_S1Hand)",
        "Flood map polygons (Spain_7370579_S1Hand)",
        "Flood map probability (Spain_7370579_S1Hand)",
    ]
    flood = added["Flood map (Spain_7370579_S1Hand)"]
    classes = {c.value: c for c in flood.renderer().classes()}
    assert [classes[v].label for v in sorted(classes)] == ["dry", "water"] and classes[0].color.alpha() == 0
    provider = flood.dataProvider()
    assert provider.sourceHasNoDataValue(1) and provider.sourceNoDataValue(1) == 255
    assert provider.useSourceNoDataValue(1)  # 255 outside the polygon is drawn transparent
    with rasterio.open(s1_layer.source()) as src:
        geometry = load_aoi(aoi, src.crs)
        window = aoi_window(geometry, src.transform, src.width, src.height)
        transform = src.window_transform(window)
    with rasterio.open(outcome.result["outputs"]["classes"]) as out:
        assert out.crs == src.crs and out.transform.almost_equals(transform, precision=1e-12)
        assert (out.height, out.width) == (window.height, window.width)
        data = out.read(1)
    inside = aoi_mask(geometry, transform, data.shape)
    assert set(np.unique(data[inside]).tolist()) == {0, 1} and (data[~inside] == 255).all()
    left, bottom, right, top = rasterio.transform.array_bounds(window.height, window.width, transform)
    box = flood.extent()
    assert (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()) == pytest.approx(
        (left, bottom, right, top), abs=1e-9
    )
    assert dock.message.text() == f"Done: {outcome.result['outputs']['classes']}"
