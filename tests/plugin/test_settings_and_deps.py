"""Settings (QgsSettings round trip, CUDA offered only when usable) and the dependency check/installer."""

from __future__ import annotations

import sys

import pytest
from contrasat.plugin import deps, deps_dialog
from contrasat.plugin.deps import REQUIREMENTS, command_text, install_command, missing_modules
from contrasat.plugin.deps_dialog import DependencyDialog
from contrasat.plugin.settings import RunSettings, load_settings, save_settings
from contrasat.plugin.settings_dialog import SettingsDialog
from qgis.core import Qgis, QgsSettings
from qgis.PyQt.QtWidgets import QDialog


@pytest.fixture(autouse=True)
def clean_settings():
    """Each test starts from (and leaves) an empty `contrasat/` settings group."""
    QgsSettings().remove("contrasat")
    yield
    QgsSettings().remove("contrasat")


def test_settings_round_trip_and_run_config():
    assert load_settings() == RunSettings()
    save_settings(RunSettings(provider="cpu", threads=2, tile_size=256, overlap=0, batch_size=8))
    loaded = load_settings()
    assert (loaded.provider, loaded.threads, loaded.tile_size, loaded.overlap, loaded.batch_size) == (
        "cpu", 2, 256, 0, 8,
    )  # fmt: skip
    config = loaded.to_config()
    assert (config.provider, config.threads, config.tile_size, config.overlap, config.batch_size) == (
        "cpu", 2, 256, 0, 8,
    )  # fmt: skip
    defaults = RunSettings().to_config()
    assert defaults.tile_size is None and defaults.overlap is None  # the model card decides


def test_corrupt_settings_fall_back_to_defaults():
    QgsSettings().setValue("contrasat/threads", "many")
    QgsSettings().setValue("contrasat/provider", "tpu")
    assert load_settings().threads == 0 and load_settings().provider == "auto"


@pytest.mark.parametrize("cuda", [False, True])
def test_cuda_offered_only_when_usable(cuda):
    dialog = SettingsDialog(cuda=cuda)
    offered = [dialog.provider.itemData(i) for i in range(dialog.provider.count())]
    assert offered == (["auto", "cpu", "cuda"] if cuda else ["auto", "cpu"])


def test_settings_dialog_saves_on_ok():
    dialog = SettingsDialog(cuda=False)
    dialog.provider.setCurrentIndex(dialog.provider.findData("cpu"))
    dialog.threads.setValue(3)
    dialog.batch_size.setValue(2)
    dialog.accept()
    saved = load_settings()
    assert (saved.provider, saved.threads, saved.batch_size) == ("cpu", 3, 2)


def test_settings_action_opens_dialog(plugin, monkeypatch):
    from contrasat.plugin import settings_dialog

    shown = []
    monkeypatch.setattr(settings_dialog.SettingsDialog, "exec_", lambda self: shown.append(self) or 0)
    plugin.named_actions["Settings"].trigger()
    assert len(shown) == 1


def test_missing_modules_detection(monkeypatch):
    assert missing_modules() == []  # the test environment has the whole runtime
    assert missing_modules(["numpy", "surely_not_a_module_xyz"]) == ["surely_not_a_module_xyz"]


def test_install_command_is_pinned_and_plugin_local(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/usr/bin/qgis")  # inside QGIS: not a Python interpreter
    command = install_command(["onnxruntime", "rasterio"])
    assert command[1:6] == ["-m", "pip", "install", "--upgrade", "--target"]
    assert command[6] == str(deps.LIBS_DIR) and deps.LIBS_DIR.parent == deps.PLUGIN_DIR
    assert command[7:] == [REQUIREMENTS["onnxruntime"], REQUIREMENTS["rasterio"], "numpy>=1.24,<2"]
    assert "python" in command[0] and "qgis" not in command[0]
    assert all("==" in REQUIREMENTS[m] for m in ("onnxruntime", "onnx", "rasterio"))
    text = command_text(command)
    assert text.endswith('onnxruntime==1.31.1 rasterio==1.4.4 "numpy>=1.24,<2"')


def test_dialog_shows_command_and_installs_nothing_without_consent(monkeypatch):
    monkeypatch.setattr(deps_dialog, "run_install", lambda command: pytest.fail("installed without consent"))
    dialog = DependencyDialog(["onnxruntime", "onnx"])
    assert dialog.command_box.toPlainText() == command_text(install_command(["onnxruntime", "onnx"]))
    dialog.reject()
    assert dialog.result() == QDialog.Rejected and not dialog.installed


def test_install_button_runs_the_shown_command(monkeypatch):
    calls = []
    monkeypatch.setattr(deps_dialog, "run_install", lambda command: calls.append(command) or (True, "ok"))
    dialog = DependencyDialog(["rasterio"])
    dialog.install_button.click()
    assert calls == [dialog.command] and dialog.installed and "Installed" in dialog.status.text()


def test_plugin_reports_missing_packages_on_load(qgis_iface, qgis_new_project, monkeypatch, messages):
    from contrasat import classFactory
    from contrasat.plugin import plugin as plugin_module

    monkeypatch.setattr(plugin_module, "missing_modules", lambda: ["onnxruntime"])
    opened = []
    monkeypatch.setattr(
        plugin_module.ContrasatPlugin, "show_dependency_dialog", lambda self, m: opened.append(m)
    )
    instance = classFactory(qgis_iface)
    instance.initGui()
    try:
        (warning,) = messages(Qgis.Warning)
        assert "onnxruntime" in warning and "Check dependencies" in warning
        assert opened == []  # no modal dialog at start-up
        instance.named_actions["Dependencies"].trigger()
        assert opened == [["onnxruntime"]]
    finally:
        instance.unload()


def test_activate_libs_appends_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert not deps.activate_libs(tmp_path / "absent")
    assert deps.activate_libs(tmp_path) and sys.path[-1] == str(tmp_path)  # after QGIS's own packages


WITHOUT_RUNTIME = """
import sys
for name in ("rasterio", "onnxruntime", "onnx", "fiona"):
    sys.modules[name] = None  # as in a QGIS whose Python lacks them: importing raises ImportError
from unittest.mock import MagicMock
from qgis.core import QgsApplication
app = QgsApplication([], True)
app.initQgis()
from qgis.PyQt.QtWidgets import QMainWindow
from qgis.gui import QgsMapCanvas
import contrasat
window = QMainWindow()
iface = MagicMock()
iface.mainWindow.return_value = window
iface.mapCanvas.return_value = QgsMapCanvas()
iface.addToolBar.side_effect = window.addToolBar
plugin = contrasat.classFactory(iface)
plugin.initGui()  # must not need the runtime
warning = iface.messageBar().pushMessage.call_args.args[1]
assert QgsApplication.processingRegistry().algorithmById("contrasat:map_floods") is not None
dock = plugin.show_dock()  # model cards cannot be read: the picker says why instead of failing
print("CARD", dock.panels["map_floods"].model_picker.card_view.toPlainText())
print("WARNING", warning)
plugin.unload()
"""


def test_plugin_loads_without_runtime_packages(tmp_path):
    import os
    import subprocess

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RUNTIME], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING Missing Python packages: rasterio, onnxruntime, onnx, fiona." in done.stdout
    assert "CARD Cannot read model cards" in done.stdout
