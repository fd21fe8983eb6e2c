"""Settings (QgsSettings round trip, words for the special values) and the engine check and installer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from contrasat.models.execution import Execution
from contrasat.models.registry import DEFAULTS
from contrasat.plugin import engine_env, engine_install
from contrasat.plugin.deps_dialog import DependencyDialog, pins
from contrasat.plugin.engine_env import ENGINE_PYTHON_KEY, check_engine
from contrasat.plugin.engine_install import InstallPlan, InstallTask
from contrasat.plugin.settings import RunSettings, load_settings, save_settings
from contrasat.plugin.settings_dialog import SettingsDialog
from qgis.core import Qgis, QgsApplication, QgsSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_settings(engine_is_this_python):
    """Each test starts from an empty `contrasat/` group (but with the engine) and leaves it that way."""
    QgsSettings().remove("contrasat")
    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(engine_is_this_python))
    yield
    QgsSettings().remove("contrasat")


def test_settings_round_trip_and_engine_options():
    assert load_settings() == RunSettings()
    save_settings(RunSettings(provider="cpu", threads=2, tile_size=256, overlap=0, batch_size=8))
    loaded = load_settings()
    assert (loaded.provider, loaded.threads, loaded.tile_size, loaded.overlap, loaded.batch_size) == (
        "cpu", 2, 256, 0, 8,
    )  # fmt: skip
    assert loaded.to_cli() == {"tile": 256, "overlap": 0, "batch": 8, "provider": "cpu", "threads": 2}
    assert loaded.execution == Execution(provider="cpu", threads=2, tile=256, overlap=0, batch=8)
    defaults = RunSettings().to_cli()
    assert "tile" not in defaults and "overlap" not in defaults  # the model card decides
    assert RunSettings().execution == Execution()  # the runtime's defaults, not the plugin's own


def test_settings_store_words_and_read_older_profiles():
    """'auto' and 'model' are stored as words; a profile of the 0 / -1 era reads as the same settings."""
    save_settings(RunSettings(Execution(batch="auto", threads=3)))
    assert (
        QgsSettings().value("contrasat/tile") == "model" and QgsSettings().value("contrasat/batch") == "auto"
    )
    assert load_settings().execution == Execution(batch="auto", threads=3)
    QgsSettings().remove("contrasat")
    for key, value in {"threads": 0, "tile_size": 0, "overlap": -1, "batch_size": 2}.items():
        QgsSettings().setValue(f"contrasat/{key}", value)
    assert load_settings().execution == Execution(threads="auto", tile="model", overlap="model", batch=2)


def test_corrupt_settings_fall_back_to_defaults():
    QgsSettings().setValue("contrasat/threads", "many")
    QgsSettings().setValue("contrasat/provider", "tpu")
    assert load_settings().threads == 0 and load_settings().provider == "auto"


@pytest.mark.parametrize("cuda", [False, True])
def test_cuda_offered_only_when_usable(cuda):
    dialog = SettingsDialog(cuda=cuda)
    offered = [dialog.provider.itemData(i) for i in range(dialog.provider.count())]
    assert offered == (["auto", "cpu", "cuda"] if cuda else ["auto", "cpu"])


def test_settings_dialog_shows_words_and_saves_on_ok():
    dialog = SettingsDialog(cuda=False)
    assert dialog.provider.currentText().startswith("Auto")
    assert (dialog.threads.text(), dialog.tile_size.text(), dialog.overlap.text()) == (
        "Auto", "Model default", "Model default",
    )  # fmt: skip
    dialog.provider.setCurrentIndex(dialog.provider.findData("cpu"))
    dialog.threads.setValue(3)
    dialog.batch_size.setValue(2)
    dialog.accept()
    saved = load_settings()
    assert (saved.provider, saved.threads, saved.batch_size) == ("cpu", 3, 2)


def test_engine_check_runs_the_engine():
    status = check_engine()
    assert status.ok, status.message
    names = {m["name"] for m in status.models}
    assert {"flood_s1_unet", "landcover_s2", "pixel_ts_landcover"} <= names
    # a real job ran: every piece of the job path is reported working, with the providers it really has
    assert {p["name"] for p in status.pieces} >= {
        "onnxruntime",
        "rasterio",
        "shapely",
        "write a map (the whole job)",
    }
    assert all(p["ok"] for p in status.pieces) and "CPUExecutionProvider" in status.providers
    assert "a test map ran" in status.message and not status.cuda


def test_engine_check_reports_a_missing_or_broken_engine(tmp_path):
    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(tmp_path / "env" / "bin" / "python"))
    status = check_engine()
    assert not status.ok and "not installed" in status.message
    # a Python without the runtime (no rasterio, ...): the check must say so, whatever `import` in QGIS says
    bare = tmp_path / "bare"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(bare / "bin" / "python"))
    status = check_engine()
    assert not status.ok and "check failed" in status.message and "ModuleNotFoundError" in status.message
    assert "- numpy: cannot import numpy" in status.message  # each missing piece by name, with the fix
    assert "install the engine again" in status.message and "engine ready" not in status.message


@pytest.fixture
def profile(tmp_path, monkeypatch):
    """The engine's home (install log, env) in a temporary folder instead of the QGIS profile."""
    monkeypatch.setattr(engine_env, "env_dir", lambda: tmp_path / "engine-env")
    monkeypatch.setattr(engine_install, "env_dir", lambda: tmp_path / "engine-env")
    monkeypatch.setattr(engine_install, "home", lambda: tmp_path)
    return tmp_path


def _run_task(task: InstallTask, timeout: float = 240) -> None:
    QgsApplication.taskManager().addTask(task)
    deadline = time.monotonic() + timeout
    while task.status is None and not task.error and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.05)
    QgsApplication.processEvents()


def test_installer_offline_without_wheels_says_what_to_do(profile):
    tmp_path = profile
    requirements = tmp_path / "runtime.txt"
    requirements.write_text("contrasat-no-such-package==1.0\n", encoding="utf-8")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    task = InstallTask(str(wheels), [InstallPlan(requirements, hashed=False)])
    lines = []
    task.line.connect(lines.append)
    _run_task(task)
    assert (tmp_path / "engine-env" / "bin" / "python").is_file(), "the venv was created first"
    assert "could not get the packages from the wheel folder" in task.error and "pip download" in task.error
    assert any("--no-index" in line for line in lines) and any(
        "No matching distribution" in line for line in lines
    )
    assert task.status is None
    kept = (tmp_path / "install.log").read_text(
        encoding="utf-8"
    )  # the log of the last install, in the profile
    assert "No matching distribution" in kept and "failed: pip could not get the packages" in kept


def test_installer_does_not_trust_pip_but_runs_the_engine(profile):
    """pip succeeds (nothing to install) but the engine cannot run: not reported as installed."""
    QgsSettings().setValue(ENGINE_PYTHON_KEY, "")  # the managed environment, not this test's Python
    requirements = profile / "runtime.txt"
    requirements.write_text("# nothing\n", encoding="utf-8")
    task = InstallTask(None, [InstallPlan(requirements, hashed=False)])
    _run_task(task)
    assert task.status is not None and not task.status.ok
    assert "check failed" in task.error and "ModuleNotFoundError" in task.error


def test_dialog_installs_nothing_without_consent(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_env, "env_dir", lambda: tmp_path / "engine-env")
    started = []
    monkeypatch.setattr(QgsApplication.taskManager(), "addTask", started.append, raising=False)
    dialog = DependencyDialog()
    text = " ".join(label.text() for label in dialog.findChildren(type(dialog.status)))
    assert "numpy==" in text and "rasterio==" in text and "Nothing is downloaded" in text
    assert "background" in text and "QGIS stays usable" in text and not dialog.isModal()
    assert pins() and all("==" in pin for pin in pins()) and (REPO / "requirements" / "runtime.txt").is_file()
    dialog.reject()
    assert started == [] and not (tmp_path / "engine-env").exists()


def _wait_until(condition, seconds: float = 120) -> None:
    """Let QGIS run its background tasks until `condition()` holds (or fail after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background engine check"
        QgsApplication.processEvents()
        time.sleep(0.05)


def test_plugin_hints_on_load_and_opens_installer_on_demand(
    qgis_iface, qgis_new_project, monkeypatch, messages, tmp_path
):
    from contrasat import classFactory
    from contrasat.plugin import plugin as plugin_module

    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(tmp_path / "none" / "bin" / "python"))
    opened = []
    monkeypatch.setattr(
        plugin_module.ContrasatPlugin, "show_dependency_dialog", lambda self, st: opened.append(st)
    )
    instance = classFactory(qgis_iface)
    instance.initGui()
    try:
        deadline = time.monotonic() + 60
        while not messages(Qgis.Info) and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.05)
        (hint,) = messages(Qgis.Info)
        assert "not installed" in hint and "Check dependencies" in hint
        assert opened == []  # no modal dialog at start-up
        instance.named_actions["Dependencies"].trigger()  # the check runs in the background
        _wait_until(lambda: len(opened) == 1)
        assert not opened[0].ok
        dock = instance.show_dock()
        assert not dock.engine_banner.isHidden() and "not installed" in dock.engine_label.text()
        QgsSettings().setValue(ENGINE_PYTHON_KEY, sys.executable)  # e.g. the installer finished
        instance.named_actions["Dependencies"].trigger()
        _wait_until(dock.engine_banner.isHidden)
        assert len(opened) == 1
    finally:
        instance.unload()


WITHOUT_RUNTIME = """
import sys, time
BLOCKED = ("rasterio", "onnxruntime", "onnx", "fiona", "shapely", "affine", "pydantic", "sklearn")
for name in BLOCKED:
    sys.modules[name] = None  # importing any of them in QGIS's process now raises ImportError
from unittest.mock import MagicMock
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings
app = QgsApplication([], True)
app.initQgis()
QgsSettings().setValue("contrasat/engine_python", sys.argv[1])
from qgis.PyQt.QtWidgets import QMainWindow
from qgis.gui import QgsMapCanvas, QgsMessageBar
import contrasat
window = QMainWindow()
iface = MagicMock()
iface.messageBar.return_value = QgsMessageBar(window)
iface.mainWindow.return_value = window
iface.mapCanvas.return_value = QgsMapCanvas()
iface.addToolBar.side_effect = window.addToolBar
plugin = contrasat.classFactory(iface)
plugin.initGui()
assert QgsApplication.processingRegistry().algorithmById("contrasat:map_floods") is not None
dock = plugin.show_dock()
print("CARD", dock.panels["map_floods"].model_picker.card().name)
layer = QgsRasterLayer(sys.argv[2], "s1")
QgsProject.instance().addMapLayer(layer)
task = plugin.run_map_floods(layer, sys.argv[3])
deadline = time.monotonic() + 120
while not task.outcome.done and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.02)
print("DONE", task.outcome.succeeded, task.outcome.error)
print("LAYERS", sorted(l.name() for l in QgsProject.instance().mapLayers().values()))
print("LOADED", [m for m in BLOCKED if sys.modules.get(m) is not None])
plugin.unload()
"""


def test_qgis_process_never_imports_the_runtime_libraries(tmp_path):
    """With rasterio, shapely, onnx... unimportable in QGIS's process, the plugin loads, lists the cards
    and maps floods: every job runs in the engine's process."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(tmp_path))
    sample = REPO / "resources" / "sample" / "Spain_7370579_S1Hand.tif"
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RUNTIME, sys.executable, str(sample), str(tmp_path / "flood.tif")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"CARD {DEFAULTS['flood']}" in done.stdout
    assert "DONE True None" in done.stdout, done.stdout
    assert "Flood map (s1)" in done.stdout and "LOADED []" in done.stdout
    assert (tmp_path / "flood.tif").is_file()
