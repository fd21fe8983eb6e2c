"""Runs INSIDE the real `qgis` program (`qgis --code THIS_FILE`), driven by scripts/qgis_e2e.py.

What a user does, through the plugin's own widgets: install the engine from the dependency dialog (wheel
folder), load the bundled S1 and S2 samples, Map floods from the toolbar action and its dialog, draw a
rectangle AOI with mouse events on the canvas, land cover in the dock, the time-series job, the three
Processing algorithms, and a cancelled run. It writes a JSON report of what it saw (the pytest side
checks the rasters) and screenshots, then leaves QGIS with os._exit (no "save project?" question).
Configuration comes from the JSON file named by CONTRASAT_E2E_CONFIG.
"""

import json
import os
import sys
import time
import traceback
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication, QDialog, QLabel
from qgis.utils import iface, plugins

CONFIG = json.loads(Path(os.environ["CONTRASAT_E2E_CONFIG"]).read_text(encoding="utf-8"))
OUT = Path(CONFIG["out_dir"])
SHOTS = Path(CONFIG["screenshot_dir"])
REPORT: dict = {
    "steps": [],
    "python": sys.executable,
    "sys_path_has_venv": any(".venv" in p for p in sys.path),
}
BANNED = (
    "rasterio",
    "shapely",
    "fiona",
    "onnx",
    "onnxruntime",
    "affine",
    "pyproj",
    "torch",
    "scipy",
    "pydantic",
    "sklearn",
)


def step(name: str) -> None:
    REPORT["steps"].append([name, round(time.monotonic() - START, 1)])
    print("E2E STEP", name, flush=True)


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        QgsApplication.processEvents()
        time.sleep(0.02)


def settle(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QgsApplication.processEvents()
        time.sleep(0.02)


def messages() -> list[dict]:
    """Texts and levels of the message bar items currently shown."""
    bar = iface.messageBar()
    found = []
    for item in bar.items():
        found.append({"level": int(item.level()), "text": f"{item.title()}: {item.text()}"})
    return found


def layer_info(layer) -> dict:
    info = {"name": layer.name(), "source": layer.source(), "type": layer.type()}
    renderer = layer.renderer()
    if renderer is not None and renderer.type() == "paletted":
        info["legend"] = [[c.value, c.label, c.color.alpha()] for c in renderer.classes()]
    elif renderer is not None and hasattr(renderer, "categories"):
        info["legend"] = [[c.value(), c.label(), None] for c in renderer.categories()]
    info["output"] = bool(layer.customProperty("contrasat/output", False))
    return info


def area_table(dock) -> list[list[str]]:
    table = dock.summary
    return [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]


def drive_modal(action, driver) -> None:
    """Trigger `action` (which opens a modal dialog) with `driver(dialog)` run inside the dialog's loop."""

    def run_driver():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(100, run_driver)
            return
        try:
            driver(dialog)
        except Exception:  # noqa: BLE001 - recorded, the dialog is closed so the script can go on
            REPORT.setdefault("driver_errors", []).append(traceback.format_exc())
            dialog.reject()

    QTimer.singleShot(200, run_driver)
    action.trigger()


def drive_dialog(open_dialog, driver, report_key: str, timeout: float) -> None:
    """Call `open_dialog()` (an action's trigger, a button's click), which opens the engine dialog (modal or
    not), and run `driver(dialog)` in it; returns once the driver filled REPORT[report_key]."""

    def find():
        modal = QApplication.activeModalWidget()
        if modal is not None:
            return modal
        shown = [w for w in QApplication.topLevelWidgets() if w.objectName() == "ContrasatDependencyDialog"]
        return next((w for w in shown if w.isVisible()), None)

    def run_driver():
        dialog = find()
        if dialog is None:
            QTimer.singleShot(100, run_driver)
            return
        try:
            driver(dialog)
        except Exception:  # noqa: BLE001 - recorded, the dialog is closed so the script can go on
            REPORT.setdefault("driver_errors", []).append(traceback.format_exc())
            dialog.reject()
            REPORT.setdefault(report_key, {})

    QTimer.singleShot(200, run_driver)
    open_dialog()  # returns at once when the dialog is not modal
    wait(lambda: report_key in REPORT, timeout, f"the {report_key} dialog")


def installer_driver(dock, report_key: str, timeout: float):
    """A driver for the installer dialog: the wheel folder, Install, the dock while pip runs in the
    background (REPORT[report_key]["during"]), then the outcome, the log and the seconds it took."""

    def install(dialog):
        dialog.wheelhouse.setFilePath(CONFIG["wheelhouse"])
        start = time.monotonic()
        dialog.install_button.click()
        # while pip runs in the background: the dock says so, Run and Install wait, QGIS stays responsive
        wait(
            lambda: dialog.task is not None and "Installing" in dock.engine_label.text(),
            30,
            "the install to start",
        )
        during = {
            "label": dock.engine_label.text(),
            "run_enabled": dock.run_button.isEnabled(),
            "install_enabled": dock.install_button.isEnabled(),
            "progress_shown": dock.install_progress.isVisible(),
            "modal": dialog.isModal(),
        }
        wait(lambda: dialog.task is None and dialog.status.text() and "Installing" not in dialog.status.text(),
             timeout, "the installation")  # fmt: skip
        REPORT[report_key] = {
            "succeeded": dialog.succeeded,
            "status": dialog.status.text(),
            "log_lines": dialog.log_view.toPlainText().splitlines(),
            "training_ticked": dialog.training.isChecked(),
            "seconds": round(time.monotonic() - start, 1),
            "during": during,
        }
        dialog.accept()

    return install


def folder_mb(path: Path) -> float:
    """Size of the files under `path`, in MB (10^6 bytes), as the installer's download sizes are given."""
    return round(
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6, 1
    )


def wait_job(plugin, what: str, timeout: float = 240):
    wait(lambda: not [t for t in plugin._tasks if type(t).__name__ == "JobTask"], timeout, what)
    settle(0.5)


def show_s2(path: str) -> QgsRasterLayer:
    """The S2 sample in true colour (bands 4, 3, 2 stretched 0..2500), as an analyst would show it."""
    layer = iface.addRasterLayer(path, "S2 sample")
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 4, 3, 2)
    for setter, band in (
        (renderer.setRedContrastEnhancement, 4),
        (renderer.setGreenContrastEnhancement, 3),
        (renderer.setBlueContrastEnhancement, 2),
    ):
        enhancement = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(0)
        enhancement.setMaximumValue(2500)
        setter(enhancement)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return layer


def main() -> None:
    step("start")
    window = iface.mainWindow()
    window.resize(*CONFIG["window"])
    window.showNormal()
    wait(lambda: "contrasat" in plugins, 60, "the plugin to load")
    plugin = plugins["contrasat"]
    import contrasat

    REPORT["plugin_file"] = contrasat.__file__
    # the start-up check runs in the background; its hint says the engine is missing
    wait(lambda: plugin.dock is not None or not [t for t in plugin._tasks], 60, "the start-up engine check")
    REPORT["startup_messages"] = messages()
    dock = plugin.show_dock("map_floods")
    REPORT["banner_before_install"] = [not dock.engine_banner.isHidden(), dock.engine_label.text()]

    step("install")
    drive_dialog(
        plugin.named_actions["Dependencies"].trigger,
        installer_driver(dock, "install", CONFIG["install_timeout"]),
        "install",
        CONFIG["install_timeout"] + 60,
    )
    REPORT["during_install"] = REPORT["install"]["during"]
    settle(0.5)
    REPORT["banner_after_install"] = [not dock.engine_banner.isHidden(), dock.engine_label.text()]
    REPORT["install_log_kept"] = (
        Path(QgsApplication.qgisSettingsDirPath()) / "contrasat" / "install.log"
    ).is_file()

    step("broken engine")
    # onnxruntime taken out of the installed engine: the check must say so by name, not "engine ready"
    engine = Path(QgsApplication.qgisSettingsDirPath()) / "contrasat" / "engine-env"
    (ort,) = engine.glob("lib/python3*/site-packages/onnxruntime")
    hidden = ort.with_name("onnxruntime-hidden-by-e2e")
    ort.rename(hidden)
    try:

        def broken(dialog):
            REPORT["broken_engine"] = {
                "dialog_text": " ".join(w.text() for w in dialog.findChildren(QLabel)),
                "banner": dock.engine_label.text(),
                "run_enabled": dock.run_button.isEnabled(),
            }
            dialog.reject()

        drive_dialog(plugin.named_actions["Dependencies"].trigger, broken, "broken_engine", 120)
    finally:
        hidden.rename(ort)
    plugin.named_actions["Dependencies"].trigger()  # repaired: checked again, the dock is usable
    wait(lambda: dock.engine_banner.isHidden(), 120, "the repaired engine's check")
    REPORT["repaired"] = [dock.engine_banner.isHidden(), dock.run_button.isEnabled()]
    step("installed")

    s2 = show_s2(CONFIG["s2"])
    s1 = iface.addRasterLayer(CONFIG["s1"], "S1 sample")
    root = QgsProject.instance().layerTreeRoot()
    root.findLayer(s1.id()).setItemVisibilityChecked(False)  # the S2 true colour is the backdrop
    canvas = iface.mapCanvas()
    canvas.setExtent(s1.extent())
    canvas.refresh()
    settle(1)
    dock.output_dir.setFilePath(str(OUT / "dock"))

    step("map floods (toolbar action)")
    iface.setActiveLayer(s2)  # the dialog must still offer the S1 layer, not the active S2 one

    def map_floods(dialog):
        REPORT["flood_dialog_layer"] = dialog.layer_combo.currentLayer().name()
        dialog.output_widget.setFilePath(str(OUT / "action" / "flood.tif"))
        dialog.accept()

    drive_modal(plugin.named_actions["MapFloods"], map_floods)
    wait_job(plugin, "Map floods")
    REPORT["flood"] = {
        "layers": [layer_info(lyr) for lyr in QgsProject.instance().mapLayers().values()],
        "messages": messages(),
        "areas": area_table(dock),
    }
    settle(2)
    window.grab().save(str(SHOTS / "qgis_map_floods.png"))

    step("draw AOI")
    dock.tabs.setCurrentWidget(dock.panels["land_cover"])
    panel = dock.panels["land_cover"]
    REPORT["land_cover_preselected"] = panel.layer_combos["primary"].currentLayer().name()
    dock.aoi.rectangle_button.click()
    extent = s2.extent()
    corner_a = QgsPointXY(
        extent.xMinimum() + 0.2 * extent.width(), extent.yMinimum() + 0.75 * extent.height()
    )
    corner_b = QgsPointXY(
        extent.xMinimum() + 0.65 * extent.width(), extent.yMinimum() + 0.3 * extent.height()
    )
    to_pixel = canvas.getCoordinateTransform()
    pixel_a, pixel_b = (to_pixel.transform(p) for p in (corner_a, corner_b))
    a, b = QPoint(round(pixel_a.x()), round(pixel_a.y())), QPoint(round(pixel_b.x()), round(pixel_b.y()))
    viewport = canvas.viewport()
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, a)
    for i in range(1, 6):
        QTest.mouseMove(viewport, a + (b - a) * (i / 5))
        settle(0.05)
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, b)
    settle(0.3)
    aoi = dock.aoi.aoi()
    if aoi is None:
        raise RuntimeError("the drawn rectangle did not become the AOI")
    REPORT["aoi"] = {"geometry": aoi[0], "crs": aoi[1], "status": dock.aoi.status.text()}
    from contrasat.plugin.launcher import write_aoi

    (OUT / "aoi").mkdir(parents=True, exist_ok=True)
    REPORT["aoi"]["file"] = str(write_aoi(aoi, OUT / "aoi"))  # the same file the job gets

    step("land cover in the AOI")
    panel.fixed.click()  # the tab leads with "My classes"; this run uses the bundled model's classes
    REPORT["fixed_model_note"] = panel.fixed_note.text()
    dock.run_button.click()
    wait_job(plugin, "Land cover")
    REPORT["land_cover"] = {
        "message": dock.message.text(),
        "areas": area_table(dock),
        "layers": [layer_info(lyr) for lyr in QgsProject.instance().mapLayers().values()],
        "messages": messages(),
    }
    settle(2)
    window.grab().save(str(SHOTS / "qgis_land_cover_aoi.png"))
    dock.aoi.clear()

    own_classes(plugin, dock, s2)

    step("time series")
    series = iface.addRasterLayer(CONFIG["series"], "Slovenia NDVI series")
    root.findLayer(series.id()).setItemVisibilityChecked(False)
    dock.tabs.setCurrentWidget(dock.panels["classify_series"])
    dock.panels["classify_series"].set_checked([series])
    dock.run_button.click()
    wait_job(plugin, "Classify series")
    REPORT["series"] = {
        "message": dock.message.text(),
        "areas": area_table(dock),
        "layers": [
            layer_info(lyr) for lyr in QgsProject.instance().mapLayers().values() if "Series" in lyr.name()
        ],
    }
    canvas.setExtent(s1.extent())  # back to Spain for the next runs

    step("processing")
    import processing

    proc = OUT / "processing"
    proc.mkdir(parents=True, exist_ok=True)
    REPORT["processing"] = {
        "map_floods": processing.run(
            "contrasat:map_floods",
            {
                "INPUT_S1": CONFIG["s1"],
                "OUTPUT": str(proc / "flood.tif"),
                "STATISTICS": str(proc / "flood.csv"),
            },
        ),
        "land_cover": processing.run(
            "contrasat:land_cover",
            {"INPUT_S2": CONFIG["s2"], "AOI": REPORT["aoi"]["file"], "OUTPUT": str(proc / "landcover.tif")},
        ),
        "classify_series": processing.run(
            "contrasat:classify_series", {"INPUT_S2": [CONFIG["series"]], "OUTPUT": str(proc / "series.tif")}
        ),
    }

    step("cancel half-way")
    from contrasat.plugin.settings import RunSettings, load_settings, save_settings

    saved = load_settings()
    save_settings(RunSettings(batch_size=1, tile_size=128, overlap=32, output_dir=saved.output_dir))
    dock.output_dir.setFilePath(str(OUT / "cancel"))
    dock.tabs.setCurrentWidget(dock.panels["map_floods"])
    dock.panels["map_floods"].set_layer("primary", s1)
    dock.summary.setRowCount(0)
    # QGIS announces the end of a task that ran 5 s or more ("Task complete" / "Task failed"); the sample
    # maps in about a second, so the threshold goes to 0 for this run: its notice must not say it failed
    qgis_settings = QgsSettings()
    notice_key = "minTaskLengthForSystemNotification"
    notice_after = qgis_settings.value(notice_key, 5, section=QgsSettings.App)
    qgis_settings.setValue(notice_key, 0, section=QgsSettings.App)
    pushed = []  # every message bar entry of the cancel, also those taken off again

    def record(widget) -> None:
        from qgis.gui import QgsMessageBarItem
        from qgis.PyQt import sip

        item = sip.cast(widget, QgsMessageBarItem)  # the signal hands over a plain QWidget
        pushed.append(f"{item.title()}: {item.text()}")

    iface.messageBar().widgetAdded.connect(record)
    dock.run_button.click()
    task = dock.task
    wait(lambda: task.outcome.progress or task.outcome.done, 120, "the first progress of the run to cancel")
    REPORT["cancel"] = {"progress_at_cancel": list(task.outcome.progress)}
    dock.cancel_button.click()
    wait(lambda: task.outcome.done, 60, "the cancelled run to end")
    settle(0.5)
    qgis_settings.setValue(notice_key, notice_after, section=QgsSettings.App)
    iface.messageBar().widgetAdded.disconnect(record)
    save_settings(saved)
    REPORT["cancel"].update(
        cancelled=task.outcome.cancelled,
        error=task.outcome.error,
        message=dock.message.text(),
        areas=area_table(dock),
        files=sorted(p.name for p in (OUT / "cancel").iterdir()) if (OUT / "cancel").exists() else [],
        messages=messages(),
        pushed=pushed,
    )

    finetune(plugin, dock, s1)

    step("end")
    REPORT["loaded_in_qgis"] = sorted(m for m in sys.modules if m.split(".")[0] in BANNED)
    REPORT["final_layers"] = [layer_info(lyr) for lyr in QgsProject.instance().mapLayers().values()]


def click_polygon(canvas, points) -> None:
    """Left clicks on the vertices (canvas CRS), then a right click closes the polygon."""
    to_pixel = canvas.getCoordinateTransform()
    viewport = canvas.viewport()
    pixels = []
    for point in points:
        pixel = to_pixel.transform(point)
        pixels.append(QPoint(round(pixel.x()), round(pixel.y())))
    for pixel in pixels:
        QTest.mouseClick(viewport, Qt.LeftButton, Qt.NoModifier, pixel)
        settle(0.05)
    QTest.mouseClick(viewport, Qt.RightButton, Qt.NoModifier, pixels[0])
    settle(0.1)


def own_classes(plugin, dock, s2) -> None:
    """Land cover in my classes: three classes typed in with their colours, their squares drawn with the
    mouse (zoomed in on each), a run, the legend, areas and accuracy, then Save classifier."""
    from contrasat.plugin.engine_env import user_models_dir
    from contrasat.plugin.label_layers import labels_geojson
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsRectangle
    from qgis.PyQt.QtGui import QColor

    step("land cover, my classes: draw")
    canvas = iface.mapCanvas()
    panel = dock.panels["land_cover"]
    dock.tabs.setCurrentWidget(panel)
    panel.own.click()
    labels = panel.labels
    for name, colour in CONFIG["land_cover_classes"].items():
        labels.class_name.clear()
        QTest.keyClicks(labels.class_name, name)
        labels.class_colour.setColor(QColor(colour))
        labels.add_button.click()
        settle(0.05)
    to_canvas = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem(CONFIG["label_crs"]), canvas.mapSettings().destinationCrs(),
        QgsProject.instance(),
    )  # fmt: skip
    for square in CONFIG["land_cover_squares"]:
        corners = [to_canvas.transform(QgsPointXY(x, y)) for x, y in square["corners"]]
        zoom = QgsRectangle(corners[0], corners[2])
        zoom.scale(6)  # an analyst zooms in to draw a small square
        canvas.setExtent(zoom)
        canvas.refresh()
        settle(0.2)
        button = labels.buttons[square["class"]]
        if not button.isChecked():
            button.click()
        click_polygon(canvas, corners)
    labels.buttons[CONFIG["land_cover_squares"][-1]["class"]].click()  # done drawing
    scratch = labels.label_layer.currentLayer()
    REPORT["own_labels"] = {
        "layer": scratch.name(),
        "field": labels.class_field.currentField(),
        "status": labels.draw_status.text(),
        "tool_active": canvas.mapTool() is panel.drawer.tool,
        "buttons": list(labels.buttons),
        "document": labels_geojson(scratch, "class"),  # what the job got, to rerun it with the CLI
    }
    canvas.setExtent(s2.extent())
    canvas.refresh()

    step("land cover, my classes: run")
    dock.output_dir.setFilePath(str(OUT / "own_classes"))
    before = set(QgsProject.instance().mapLayers())
    start = time.monotonic()
    dock.run_button.click()
    task = dock.task
    wait_job(plugin, "Land cover in my classes")
    added = [lyr for lid, lyr in QgsProject.instance().mapLayers().items() if lid not in before]
    REPORT["own_classes"] = {
        "seconds": round(time.monotonic() - start, 1),
        "error": task.outcome.error if task is not None else "not started",
        "result": task.outcome.result if task is not None else None,
        "message": dock.message.text(),
        "areas": area_table(dock),
        "accuracy": dock.accuracy.text(),
        "layers": [layer_info(lyr) for lyr in added],
        "messages": messages(),
        "save_visible": dock.save_classifier_button.isVisible(),
    }
    settle(1)
    iface.mainWindow().grab().save(str(SHOTS / "qgis_land_cover_own.png"))

    step("land cover, my classes: save classifier")
    dock.save_classifier_button.click()
    picker = panel.model_picker
    REPORT["own_classes"].update(
        saved_message=dock.message.text(),
        models=sorted(p.name for p in user_models_dir().glob("*.onnx")),
        land_cover_models=[picker.combo.itemText(i) for i in range(picker.combo.count())],
        flood_models=[
            dock.panels["map_floods"].model_picker.combo.itemText(i)
            for i in range(dock.panels["map_floods"].model_picker.combo.count())
        ],
    )
    root = QgsProject.instance().layerTreeRoot()
    for lyr in added + [scratch]:  # the next jobs' screenshots show their own maps
        root.findLayer(lyr.id()).setItemVisibilityChecked(False)
    iface.messageBar().clearWidgets()


def finetune(plugin, dock, s1) -> None:
    """The Fine-tune tab on the engine as installed (no torch): it offers training support when it opens,
    before any drawing; water/dry squares drawn with the mouse; a run refused with one message; "Add
    training support…" installs it from the wheel folder in the background (timed, the engine measured
    before and after); then the same run on the managed engine: new model, base and new maps."""
    from contrasat.plugin.engine_env import user_models_dir
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform

    step("fine-tune: the tab offers training support")
    panel = dock.panels["finetune"]
    dock.tabs.setCurrentWidget(panel)
    wait(lambda: panel.training_present is not None, 120, "the training-support check of the Fine-tune tab")
    REPORT["training_offer"] = {
        "present": panel.training_present,
        "shown": panel.training_box.isVisible(),
        "text": panel.training_label.text(),
        "button": panel.training_button.text(),
    }

    step("fine-tune: draw labels")
    canvas = iface.mapCanvas()
    canvas.setExtent(s1.extent())
    canvas.refresh()
    settle(0.5)
    dock.output_dir.setFilePath(str(OUT / "finetune"))
    panel.set_checked([s1])
    to_canvas = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem(CONFIG["label_crs"]), canvas.mapSettings().destinationCrs(),
        QgsProject.instance(),
    )  # fmt: skip
    for square in CONFIG["label_squares"]:
        button = panel.draw_water if square["class"] == "water" else panel.draw_dry
        if not button.isChecked():
            button.click()
        click_polygon(canvas, [to_canvas.transform(QgsPointXY(x, y)) for x, y in square["corners"]])
    panel.draw_dry.click()  # done drawing: the canvas gets its tool back
    scratch = panel.label_layer.currentLayer()
    REPORT["finetune_labels"] = {
        "layer": scratch.name(),
        "provider": scratch.providerType(),
        "field": panel.class_field.currentField(),
        "tool_active": canvas.mapTool() is panel.drawer.tool,
        "status": panel.draw_status.text(),
        "features": [
            {"class": f["class"], "bbox": f.geometry().boundingBox().toRectF().getCoords()}
            for f in scratch.getFeatures()
        ],
        "crs": scratch.crs().authid(),
    }
    panel.steps.setValue(CONFIG["finetune_steps"])

    step("fine-tune: managed engine without torch")
    panel.run_button.click()
    task = dock.task
    wait(lambda: task is None or task.outcome.done, 120, "the fine-tune on the managed engine")
    settle(0.5)
    REPORT["finetune_no_torch"] = {
        "started": task is not None,
        "error": task.outcome.error if task is not None else None,
        "message": dock.message.text(),
        "messages": messages(),
        "models": sorted(p.name for p in user_models_dir().glob("*")) if user_models_dir().is_dir() else [],
    }
    iface.messageBar().clearWidgets()

    step("fine-tune: add training support")
    engine = Path(QgsApplication.qgisSettingsDirPath()) / "contrasat" / "engine-env"
    engine_mb = folder_mb(engine)
    timeout = CONFIG["training_install_timeout"]
    drive_dialog(
        panel.training_button.click,
        installer_driver(dock, "training_install", timeout),
        "training_install",
        timeout + 60,
    )
    REPORT["training_install"].update(engine_mb_before=engine_mb, engine_mb_after=folder_mb(engine))
    wait(lambda: panel.training_present is not None, 120, "the Fine-tune tab's check after the install")
    REPORT["training_install"]["after"] = {
        "present": panel.training_present,
        "offer_shown": panel.training_box.isVisible(),
        "banner_shown": not dock.engine_banner.isHidden(),
        "run_enabled": panel.run_button.isEnabled() and dock.run_button.isEnabled(),
    }

    step("fine-tune: managed engine with training support")
    before = set(QgsProject.instance().mapLayers())
    start = time.monotonic()
    panel.run_button.click()
    task = dock.task
    wait(lambda: task.outcome.done, 240, "the fine-tune")
    REPORT["finetune"] = {
        "seconds": round(time.monotonic() - start, 1),
        "result": task.outcome.result,
        "error": task.outcome.error,
        "progress": list(task.outcome.progress),
        "message": dock.message.text(),
        "models_dir": str(user_models_dir()),
    }
    wait_job(plugin, "the base and fine-tuned maps", 240)
    flood_picker = dock.panels["map_floods"].model_picker
    added = [lyr for lid, lyr in QgsProject.instance().mapLayers().items() if lid not in before]
    REPORT["finetune"].update(
        seconds_with_maps=round(time.monotonic() - start, 1),
        map_floods_model=[flood_picker.combo.currentText(), str(flood_picker.model_path())],
        base_choices=[panel.model_picker.combo.itemText(i) for i in range(panel.model_picker.combo.count())],
        layers=[layer_info(lyr) for lyr in added],
        messages=messages(),
        final_message=dock.message.text(),
        models=sorted(p.name for p in user_models_dir().glob("*")),
        raster_choices=[panel.rasters.item(i).text() for i in range(panel.rasters.count())],
    )
    root = QgsProject.instance().layerTreeRoot()
    for lyr in QgsProject.instance().mapLayers().values():  # the earlier jobs' maps would hide the scene
        if lyr.name().startswith(("Land cover", "Series", "Flood map (S1 sample)")):
            root.findLayer(lyr.id()).setItemVisibilityChecked(False)
    settle(1)
    iface.mainWindow().grab().save(str(SHOTS / "qgis_finetune.png"))


def run() -> None:
    code = 0
    try:
        main()
    except Exception:  # noqa: BLE001 - everything goes into the report for the pytest side
        REPORT["error"] = traceback.format_exc()
        code = 1
    finally:
        try:
            QgsProject.instance().setDirty(False)
        finally:
            Path(CONFIG["report"]).write_text(json.dumps(REPORT, indent=1, default=str), encoding="utf-8")
            print("E2E REPORT", CONFIG["report"], flush=True)
            os._exit(code)


START = time.monotonic()
for widget in QApplication.topLevelWidgets():  # a first-run dialog would block the script
    if isinstance(widget, QDialog) and widget.isVisible() and widget is not iface.mainWindow():
        widget.reject()
QTimer.singleShot(500, run)
