"""The Map floods flow end to end: dialog choice -> QgsTask -> engine process -> styled layer and message.

Every job runs the real engine (`python -m contrasat ... --progress json` in its own process). Most tests
use a tiny threshold model (water where VH < -20 dB) so they check exact answers without the trained
weights; the crash test uses a stand-in engine that kills itself with SIGSEGV.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.registry import DEFAULTS, WEIGHTS_DIR
from contrasat.plugin import launcher
from contrasat.plugin.launcher import JobRequest
from contrasat.plugin.settings import RunSettings, save_settings
from contrasat.plugin.tasks import JobTask
from qgis.core import Qgis, QgsProject, QgsRasterLayer
from runtime_helpers import S1_SAMPLE, expected_classes

BUNDLED = WEIGHTS_DIR / f"{DEFAULTS['flood']}.onnx"
FAKE_ENGINE = Path(__file__).resolve().parent / "fake_engine.py"


def _messages(qgis_iface, level):
    return qgis_iface.messageBar().get_messages(level)


def _added_layers():
    return list(QgsProject.instance().mapLayers().values())


def _files(folder):
    """Everything in the output folder, hidden partial files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _check_flood_layer(plugin, s1_layer, out, qgis_iface):
    layers = [lyr for lyr in _added_layers() if lyr is not s1_layer]
    assert len(layers) == 1, "exactly one new layer"
    layer = layers[0]
    assert isinstance(layer, QgsRasterLayer) and layer.isValid()
    assert layer.source() == str(out)
    assert layer.name() == "Flood map (Spain_7370579_S1Hand)"
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    classes = {c.value: c for c in renderer.classes()}
    assert [classes[v].label for v in sorted(classes)] == ["dry", "water"]
    assert classes[0].color.alpha() == 0
    water = classes[1].color
    assert water.blue() > water.red() and water.alpha() == 255
    (success,) = _messages(qgis_iface, Qgis.Success)
    assert "Flooded area:" in success and "km²" in success and "on CPU)" in success
    assert "ExecutionProvider" not in success
    assert not _messages(qgis_iface, Qgis.Critical)
    return layer, success


def test_map_floods_on_sample(plugin, s1_layer, qgis_iface, tmp_path, threshold_model, wait_task):
    out = tmp_path / "out" / "flood.tif"  # folder does not exist yet: the plugin creates it
    task = plugin.run_map_floods(s1_layer, out, model=threshold_model)
    outcome = wait_task(task)
    assert outcome.succeeded and not outcome.cancelled, outcome.error
    assert outcome.progress and outcome.progress[-1] == pytest.approx(1.0)
    _, message = _check_flood_layer(plugin, s1_layer, out, qgis_iface)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(s1_layer.source()))
    area = outcome.result["flooded_km2"]
    summary = (out.parent / "flood_areas.csv").read_text(encoding="utf-8")
    assert area > 0 and f"Flooded area: {area:.2f} km² (model vh_threshold, on CPU)" in message
    assert "water" in summary and _files(out.parent) == ["flood.tif", "flood_areas.csv"]
    # the plugin let go of the finished job (the engine check started on load may still be running)
    assert [t for t in plugin._tasks if type(t).__name__ == "JobTask"] == []


@pytest.mark.skipif(not BUNDLED.is_file(), reason=f"needs the trained weights {BUNDLED}")
def test_bundled_model_on_sample(plugin, s1_layer, qgis_iface, tmp_path, wait_task):
    out = tmp_path / "flood.tif"
    outcome = wait_task(plugin.run_map_floods(s1_layer, out))  # default model, as the dialog does
    assert outcome.succeeded, outcome.error
    _check_flood_layer(plugin, s1_layer, out, qgis_iface)
    assert outcome.result["model"] == DEFAULTS["flood"]
    assert outcome.result["flooded_km2"] is not None and outcome.result["flooded_km2"] >= 0


def _assert_failed_cleanly(outcome, qgis_iface, folder, layers_before, words):
    assert not outcome.succeeded and not outcome.cancelled
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert all(w in critical for w in words), critical
    assert not _messages(qgis_iface, Qgis.Success)
    assert _added_layers() == layers_before, "no layer added"
    assert _files(folder) == [], "no output written"


def test_wrong_band_count(plugin, add_raster, write_raster, qgis_iface, tmp_path, threshold_model, wait_task):
    data = np.full((3, 32, 32), -12.0, dtype=np.float32)  # three unnamed bands: not VV/VH
    layer = add_raster(write_raster(tmp_path / "three_bands.tif", data), "three bands", qgis_iface)
    before = _added_layers()
    out_dir = tmp_path / "out"
    outcome = wait_task(plugin.run_map_floods(layer, out_dir / "flood.tif", model=threshold_model))
    _assert_failed_cleanly(outcome, qgis_iface, out_dir, before, ["three_bands.tif", "3 band"])


def test_all_nan_raster(plugin, add_raster, write_raster, qgis_iface, tmp_path, threshold_model, wait_task):
    data = np.full((2, 32, 32), np.nan, dtype=np.float32)
    path = write_raster(tmp_path / "empty.tif", data, descriptions=("VV", "VH"), nodata=float("nan"))
    layer = add_raster(path, "empty", qgis_iface)
    before = _added_layers()
    out_dir = tmp_path / "out"
    outcome = wait_task(plugin.run_map_floods(layer, out_dir / "flood.tif", model=threshold_model))
    _assert_failed_cleanly(outcome, qgis_iface, out_dir, before, ["empty.tif", "no valid pixels"])


def test_cancel_after_first_progress(
    plugin, s1_layer, qgis_iface, tmp_path, wait_task, monkeypatch, saved_settings
):
    original = JobTask._on_progress

    def progress_then_cancel(self, fraction):
        original(self, fraction)
        if len(self.outcome.progress) == 1:
            self.cancel()  # as the user pressing Cancel mid-run: SIGTERM to the engine

    monkeypatch.setattr(JobTask, "_on_progress", progress_then_cancel)
    before = _added_layers()
    out_dir = tmp_path / "out"
    # the bundled U-Net, one tile per batch: slow enough that the cancel lands mid-run
    save_settings(RunSettings(batch_size=1, tile_size=128, overlap=32))
    outcome = wait_task(plugin.run_map_floods(s1_layer, out_dir / "flood.tif"))
    assert outcome.cancelled and not outcome.succeeded, outcome.error
    assert 0 < outcome.progress[0] < 1, "cancelled half-way, not at the end"
    (info,) = _messages(qgis_iface, Qgis.Info)
    assert "cancelled" in info
    assert not _messages(qgis_iface, Qgis.Critical) and not _messages(qgis_iface, Qgis.Success)
    assert _added_layers() == before
    assert _files(out_dir) == [], "the engine removed its temporary files"


def test_non_file_layer_is_refused(plugin, qgis_iface, qgis_new_project, tmp_path):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer("Point?crs=EPSG:4326", "points", "memory")
    assert plugin.run_map_floods(layer, tmp_path / "flood.tif") is None
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "points" in critical
    assert _files(tmp_path) == []


def _fake_engine(monkeypatch, mode):
    """Jobs run the stand-in engine (tests/plugin/fake_engine.py) instead of `python -m contrasat`."""
    monkeypatch.setattr(launcher, "request_command", lambda *_args: [sys.executable, str(FAKE_ENGINE), mode])


def test_engine_crash_is_reported_and_qgis_stays_up(
    plugin, s1_layer, qgis_iface, tmp_path, wait_task, monkeypatch
):
    _fake_engine(monkeypatch, "crash")
    outcome = wait_task(plugin.run_map_floods(s1_layer, tmp_path / "f.tif"))
    assert not outcome.succeeded and not outcome.cancelled
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "SIGSEGV" in critical and "onnxruntime: about to fail" in critical  # the engine's last words
    assert _added_layers() == [s1_layer]


def test_missing_engine_is_explained(plugin, s1_layer, qgis_iface, tmp_path, wait_task):
    from contrasat.plugin.engine_env import ENGINE_PYTHON_KEY
    from qgis.core import QgsSettings

    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(tmp_path / "no-env" / "bin" / "python"))
    wait_task(plugin.run_map_floods(s1_layer, tmp_path / "f.tif"))
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "engine is not installed" in critical and "Check dependencies" in critical


def test_task_can_run_synchronously(s1_layer, tmp_path, threshold_model):
    """run() + finished() in the calling thread, with the real engine, as a script can do it."""
    done = []
    out = tmp_path / "f.tif"
    request = JobRequest("map_floods", tmp_path / "missing.tif", out, {"model": threshold_model})
    task = JobTask("t", request, on_done=done.append)
    task.finished(task.run())
    assert done == [task] and not task.outcome.succeeded and "missing.tif" in task.outcome.error
    request = JobRequest("map_floods", S1_SAMPLE, out, {"model": threshold_model})
    task = JobTask("t", request, on_done=done.append)
    task.finished(task.run())
    assert task.outcome.succeeded, task.outcome.error
    assert task.outcome.progress[-1] == pytest.approx(1.0) and task.progress() == pytest.approx(100.0)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(str(S1_SAMPLE)))


def test_unload_cancels_running_job(qgis_iface, qgis_new_project, s1_layer, tmp_path, wait_task, monkeypatch):
    from contrasat import classFactory

    _fake_engine(monkeypatch, "cancel")  # runs 30 s unless SIGTERM stops it
    instance = classFactory(qgis_iface)
    instance.initGui()
    task = instance.run_map_floods(s1_layer, tmp_path / "f.tif")
    instance.unload()
    outcome = wait_task(task, timeout=20)
    assert outcome.cancelled
    assert not any(_messages(qgis_iface, level) for level in (Qgis.Critical, Qgis.Success))


def test_second_run_while_the_first_runs_never_takes_its_file(
    plugin, s1_layer, qgis_iface, tmp_path, wait_task, monkeypatch
):
    """Map floods started again (toolbar or dock) before the first run has written its map: the default
    output of the second is another file, or it would replace the first result once it ends."""
    from contrasat.plugin import map_floods_dialog
    from qgis.PyQt.QtWidgets import QDialog

    QgsProject.instance().setFileName(str(tmp_path / "project.qgz"))  # outputs in tmp_path/contrasat
    monkeypatch.setattr(map_floods_dialog.MapFloodsDialog, "exec_", lambda self: QDialog.Accepted)
    _fake_engine(monkeypatch, "cancel")  # runs until cancelled: the first map is not written yet
    running = lambda: [t for t in plugin._tasks if isinstance(t, JobTask)]  # noqa: E731
    plugin.map_floods_action.trigger()
    plugin.map_floods_action.trigger()
    dock = plugin.show_dock("map_floods")
    dock.output_dir.setFilePath(str(tmp_path / "contrasat"))
    dock.panels["map_floods"].model_picker.set_model_path(BUNDLED)
    dock.panels["map_floods"].set_layer("primary", s1_layer)
    assert dock.run_panel(dock.panels["map_floods"]) is not None
    tasks = running()
    outs = [t.request.out for t in tasks]
    stats = [t.request.options["statistics"] for t in tasks]
    for task in tasks:
        task.cancel()
    for task in tasks:
        wait_task(task, timeout=20)
    assert len(tasks) == 3 and len(set(outs)) == 3, outs
    assert len(set(stats)) == 3, stats
    # once the runs have ended their names are free again
    assert map_floods_dialog.MapFloodsDialog(s1_layer).output_path() == tmp_path / "contrasat" / (
        "Spain_7370579_S1Hand_flood.tif"
    )


def test_engine_warnings_reach_the_message_bar_as_warnings(
    plugin, add_raster, write_raster, qgis_iface, tmp_path, threshold_model, wait_task
):
    """A note the engine gives as a warning (here: a raster smaller than one tile, so its pixels may be
    classed otherwise than in the whole scene) is a Warning in the message bar, not a passing Info."""
    data = np.full((2, 32, 32), -12.0, dtype=np.float32)
    data[1, :, :16] = -25.0  # water on the left half
    path = write_raster(tmp_path / "small.tif", data, descriptions=("VV", "VH"))
    layer = add_raster(path, "small", qgis_iface)
    outcome = wait_task(plugin.run_map_floods(layer, tmp_path / "out" / "f.tif", model=threshold_model))
    assert outcome.succeeded, outcome.error
    (warning,) = _messages(qgis_iface, Qgis.Warning)
    assert "smaller than one 128-pixel tile" in warning
    assert not [m for m in _messages(qgis_iface, Qgis.Info) if "smaller than one" in m]
    assert _messages(qgis_iface, Qgis.Success)


def test_guide_captions_name_the_default_flood_model():
    """The help page's Map floods screenshot caption names the model Map floods uses by default."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "qgis.md").read_text(encoding="utf-8")
    captions = [line for line in guide.splitlines() if line.startswith("*Map floods (")]
    assert captions and all(f"(`{DEFAULTS['flood']}`" in line for line in captions), captions
