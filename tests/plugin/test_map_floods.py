"""The Map floods flow end to end: dialog choice -> QgsTask -> runtime -> styled layer and message.

Most tests use a tiny threshold model (water where VH < -20 dB) so they check exact answers without
the trained weights; `test_bundled_model_on_sample` needs models/weights/flood_s1_unet.onnx.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from contrasat.models.errors import InputError
from contrasat.models.registry import WEIGHTS_DIR
from contrasat.plugin import tasks as tasks_module
from contrasat.plugin.tasks import JobTask, MapFloodsTask
from qgis.core import Qgis, QgsProject, QgsRasterLayer
from runtime_helpers import expected_classes

BUNDLED = WEIGHTS_DIR / "flood_vh_threshold.onnx"


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
    assert "Flooded area:" in success and "km²" in success and "CPUExecutionProvider" in success
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
    area = outcome.result.flooded_km2
    assert area > 0 and f"Flooded area: {area:.2f} km² (model vh_threshold, CPUExecutionProvider)" in message
    assert _files(out.parent) == ["flood.tif"]
    assert plugin._tasks == set()  # the plugin let go of the finished task


@pytest.mark.skipif(not BUNDLED.is_file(), reason=f"needs the trained weights {BUNDLED}")
def test_bundled_model_on_sample(plugin, s1_layer, qgis_iface, tmp_path, wait_task):
    out = tmp_path / "flood.tif"
    outcome = wait_task(plugin.run_map_floods(s1_layer, out))  # default model, as the dialog does
    assert outcome.succeeded, outcome.error
    _check_flood_layer(plugin, s1_layer, out, qgis_iface)
    assert outcome.result.model_name == "flood_vh_threshold"
    assert outcome.result.flooded_km2 is not None and outcome.result.flooded_km2 >= 0


def _assert_failed_cleanly(outcome, qgis_iface, folder, layers_before, words):
    assert not outcome.succeeded and not outcome.cancelled
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "\n" not in critical and all(w in critical for w in words), critical
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
    plugin, s1_layer, qgis_iface, tmp_path, threshold_model, wait_task, monkeypatch
):
    original = JobTask._report_progress

    def report_then_cancel(self, fraction):
        original(self, fraction)
        if len(self.outcome.progress) == 1:
            self.cancel()  # as the user pressing the task's cancel button mid-run

    monkeypatch.setattr(JobTask, "_report_progress", report_then_cancel)
    before = _added_layers()
    out_dir = tmp_path / "out"
    outcome = wait_task(plugin.run_map_floods(s1_layer, out_dir / "flood.tif", model=threshold_model))
    assert outcome.cancelled and not outcome.succeeded
    assert 0 < outcome.progress[0] < 1, "cancelled half-way, not at the end"
    assert len(outcome.progress) == 1, "no batch ran after the cancel"
    (info,) = _messages(qgis_iface, Qgis.Info)
    assert "cancelled" in info
    assert not _messages(qgis_iface, Qgis.Critical) and not _messages(qgis_iface, Qgis.Success)
    assert _added_layers() == before
    assert _files(out_dir) == []


def test_cancel_after_last_batch_removes_output(
    plugin, s1_layer, qgis_iface, tmp_path, threshold_model, wait_task, monkeypatch
):
    """A cancel that arrives after the runtime's last check still leaves nothing behind."""
    original = JobTask._report_progress

    def cancel_at_end(self, fraction):
        original(self, fraction)
        if fraction >= 1.0:
            self.cancel()

    monkeypatch.setattr(JobTask, "_report_progress", cancel_at_end)
    out_dir = tmp_path / "out"
    outcome = wait_task(plugin.run_map_floods(s1_layer, out_dir / "flood.tif", model=threshold_model))
    assert outcome.cancelled
    assert _files(out_dir) == []
    assert _added_layers() == [s1_layer]


def test_non_file_layer_is_refused(plugin, qgis_iface, qgis_new_project, tmp_path):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer("Point?crs=EPSG:4326", "points", "memory")
    assert plugin.run_map_floods(layer, tmp_path / "flood.tif") is None
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "points" in critical
    assert _files(tmp_path) == []


# ---- plugin logic against a stand-in runtime (no model, no raster I/O) -------------------------------


def _fake_runtime(monkeypatch, behaviour):
    monkeypatch.setattr(tasks_module, "load_job", lambda job: behaviour)


def test_runtime_input_error_message_is_shown(plugin, s1_layer, qgis_iface, tmp_path, wait_task, monkeypatch):
    def fails(s1, out, **kwargs):
        raise InputError(f"S1 raster {s1.name} is broken")

    _fake_runtime(monkeypatch, fails)
    outcome = wait_task(plugin.run_map_floods(s1_layer, tmp_path / "f.tif"))
    assert outcome.error == "S1 raster Spain_7370579_S1Hand.tif is broken"
    assert _messages(qgis_iface, Qgis.Critical) == ["Contrasat:S1 raster Spain_7370579_S1Hand.tif is broken"]


def test_unexpected_exception_is_reported_not_raised(
    plugin, s1_layer, qgis_iface, tmp_path, wait_task, monkeypatch
):
    def crashes(s1, out, **kwargs):
        raise ZeroDivisionError("boom")

    _fake_runtime(monkeypatch, crashes)
    outcome = wait_task(plugin.run_map_floods(s1_layer, tmp_path / "f.tif"))
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "unexpected error: ZeroDivisionError: boom" in critical
    assert not outcome.succeeded and not outcome.cancelled


def test_missing_runtime_dependency_is_explained(
    plugin, s1_layer, qgis_iface, tmp_path, wait_task, monkeypatch
):
    def no_runtime(job):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(tasks_module, "load_job", no_runtime)
    wait_task(plugin.run_map_floods(s1_layer, tmp_path / "f.tif"))
    (critical,) = _messages(qgis_iface, Qgis.Critical)
    assert "onnxruntime" in critical


def test_task_can_run_synchronously(s1_layer, tmp_path, monkeypatch):
    """run() + finished() in the calling thread, as a test or a script can do without the task manager."""
    seen = {}

    def records(s1, out, *, progress, is_cancelled, **kwargs):
        progress(0.5)
        seen["cancelled"] = is_cancelled()
        raise InputError("stop here")

    _fake_runtime(monkeypatch, records)
    done = []
    task = MapFloodsTask("t", s1_layer.source(), tmp_path / "f.tif", on_done=done.append)
    task.finished(task.run())
    assert done == [task] and task.outcome.error == "stop here" and task.outcome.progress == [0.5]
    assert seen == {"cancelled": False} and task.progress() == pytest.approx(50.0)


def test_unload_cancels_running_job(qgis_iface, qgis_new_project, s1_layer, tmp_path, wait_task, monkeypatch):
    from contrasat import classFactory
    from contrasat.models.errors import Cancelled

    def waits_for_cancel(s1, out, *, is_cancelled, **kwargs):
        import time

        deadline = time.monotonic() + 30
        while not is_cancelled():
            if time.monotonic() > deadline:
                raise AssertionError("never cancelled")
            time.sleep(0.01)
        raise Cancelled("cancelled by the user")

    _fake_runtime(monkeypatch, waits_for_cancel)
    instance = classFactory(qgis_iface)
    instance.initGui()
    task = instance.run_map_floods(s1_layer, tmp_path / "f.tif")
    instance.unload()
    outcome = wait_task(task)
    assert outcome.cancelled
    assert not any(_messages(qgis_iface, level) for level in (Qgis.Info, Qgis.Critical, Qgis.Success))
