"""Fixtures for plugin tests: the loaded plugin on pytest-qgis's stub iface, layers, and task waiting."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat import classFactory
from contrasat.plugin.engine_env import ENGINE_PYTHON_KEY, MODELS_DIR_KEY
from contrasat.plugin.plugin import ContrasatPlugin
from contrasat.plugin.tasks import JobTask, TaskOutcome
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QEvent
from rasterio.transform import from_origin
from runtime_helpers import REPO, S1_SAMPLE, S2_SAMPLE, make_model, s1_spec

# pytest.ini puts only tests/ on sys.path (importlib mode): make this folder's helpers importable too.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_models import make_land_cover_model, make_series_model  # noqa: E402

SERIES_STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
TASK_TIMEOUT_S = 300  # the bundled U-Net on 512x512 takes seconds on CPU; this only catches hangs


def _flush_deletes() -> None:
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    QCoreApplication.processEvents()


@pytest.fixture
def flush_deletes() -> Callable[[], None]:
    """flush_deletes(): deliver pending deleteLater() calls, as QGIS's event loop would after unload."""
    return _flush_deletes


def _wait_for(task: JobTask | None, timeout: float = TASK_TIMEOUT_S) -> TaskOutcome:
    assert task is not None, "the plugin refused to start a task"
    outcome = task.outcome  # held directly: the task manager deletes the QgsTask after finished()
    deadline = time.monotonic() + timeout
    while not outcome.done:
        if time.monotonic() > deadline:
            task.cancel()
            raise AssertionError(f"task did not finish within {timeout} s")
        QgsApplication.processEvents()
        time.sleep(0.01)
    QgsApplication.processEvents()  # let the task manager clean up before the next test
    return outcome


@pytest.fixture
def wait_task() -> Callable[..., TaskOutcome]:
    """wait_task(task, timeout=...): the task's outcome once the plugin has handled it."""
    return _wait_for


@pytest.fixture(autouse=True)
def engine_is_this_python():
    """Jobs run on this test interpreter (it has the runtime), as on a user's managed environment.

    The engine still runs as a separate process: `python -m contrasat ... --progress json`.
    """
    settings = QgsSettings()
    previous = settings.value(ENGINE_PYTHON_KEY, "")
    settings.setValue(ENGINE_PYTHON_KEY, sys.executable)
    yield Path(sys.executable)
    settings.setValue(ENGINE_PYTHON_KEY, previous or "")


@pytest.fixture
def saved_settings():
    """Restores the user's Contrasat run settings after a test changed them."""
    from contrasat.plugin.settings import load_settings, save_settings

    before = load_settings()
    yield before
    save_settings(before)


@pytest.fixture
def plugin(qgis_iface, qgis_new_project) -> Iterator[ContrasatPlugin]:
    """The plugin as QGIS loads it: classFactory(iface) then initGui(); unloaded afterwards."""
    instance = classFactory(qgis_iface)
    instance.initGui()
    yield instance
    instance.unload()
    _flush_deletes()
    # the start-up engine check runs in the background: let it end here, or it may run in a later test on
    # that test's engine (a recording stand-in that would then log `models --json` as the job's command)
    manager = QgsApplication.taskManager()
    deadline = time.monotonic() + 60
    while manager.countActiveTasks() and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.01)


@pytest.fixture(scope="session")
def s1_sample() -> Path:
    assert S1_SAMPLE.exists(), "bundled sample missing from resources/sample"
    return S1_SAMPLE


@pytest.fixture(scope="session")
def threshold_model(tmp_path_factory) -> Path:
    """Tiny S1 model (water where VH < -20 dB, tiles of 128): exact answers without the trained weights."""
    return make_model(tmp_path_factory.mktemp("models") / "vh_threshold.onnx", [s1_spec()])


def _add_raster(path: Path, name: str, iface=None) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid(), path
    QgsProject.instance().addMapLayer(layer)
    if iface is not None:
        iface.setActiveLayer(layer)
    return layer


@pytest.fixture
def add_raster(qgis_new_project) -> Callable[..., QgsRasterLayer]:
    """add_raster(path, name, iface=None): load a raster into a fresh project (active when iface is given)."""
    return _add_raster


@pytest.fixture
def s1_layer(qgis_iface, add_raster, s1_sample) -> QgsRasterLayer:
    """The real Sentinel-1 sample as the project's active layer."""
    return add_raster(s1_sample, "Spain_7370579_S1Hand", qgis_iface)


def _write_raster(
    path: Path, data: np.ndarray, descriptions: tuple[str, ...] | None = None, nodata=None
) -> Path:
    bands, rows, cols = data.shape
    profile = {
        "driver": "GTiff", "dtype": data.dtype.name, "count": bands, "width": cols, "height": rows,
        "crs": "EPSG:4326", "transform": from_origin(-1.0, 40.0, 0.0001, 0.0001), "nodata": nodata,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = descriptions
    return path


@pytest.fixture
def write_raster() -> Callable[..., Path]:
    """write_raster(path, data (bands, rows, cols), descriptions=None, nodata=None): a tiny EPSG:4326 GeoTIFF."""
    return _write_raster


@pytest.fixture(scope="session")
def s2_sample() -> Path:
    assert S2_SAMPLE.exists(), "bundled sample missing from resources/sample"
    return S2_SAMPLE


@pytest.fixture(scope="session")
def lc_model(tmp_path_factory) -> Path:
    """Tiny S2 land-cover model: 'water' exactly where B08 < 1000."""
    return make_land_cover_model(tmp_path_factory.mktemp("models") / "lc_threshold.onnx")


@pytest.fixture(scope="session")
def series_model(tmp_path_factory) -> Path:
    """Tiny time-series model on NDVI recurrence plots."""
    return make_series_model(tmp_path_factory.mktemp("models") / "series_test.onnx")


@pytest.fixture(scope="session")
def series_stack() -> Path:
    if not SERIES_STACK.is_file():
        pytest.skip(f"bundled series missing: {SERIES_STACK}")
    return SERIES_STACK


@pytest.fixture
def messages(qgis_iface) -> Callable[[int], list[str]]:
    """messages(level): message bar texts pushed at that level during the test."""
    return lambda level: qgis_iface.messageBar().get_messages(level)


@pytest.fixture
def models_dir(tmp_path):
    """The user's models folder, redirected to tmp_path/models for the test."""
    settings = QgsSettings()
    previous = settings.value(MODELS_DIR_KEY, "")
    folder = tmp_path / "models"
    settings.setValue(MODELS_DIR_KEY, str(folder))
    yield folder
    settings.setValue(MODELS_DIR_KEY, previous or "")
