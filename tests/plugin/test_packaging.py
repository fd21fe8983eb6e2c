"""contrasat.zip: the right files, and a plugin QGIS can load from a fresh profile's plugin folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from contrasat.models.jobs import JOBS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "package_plugin.py"
LOAD_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "contrasat.zip"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    return out


def test_zip_contents(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert all(n.startswith("contrasat/") for n in names)
    for required in ("__init__.py", "__main__.py", "cli.py", "progress.py", "requirements/runtime.txt",
                     "metadata.txt", "LICENSE", "plugin/plugin.py", "plugin/algorithms.py", "plugin/engine.py",
                     "models/pipeline.py", "resources/icons/contrasat.svg",
                     "resources/sample/Spain_7370579_S1Hand.tif"):  # fmt: skip
        assert f"contrasat/{required}" in names, required
    for job in JOBS:  # the engine runs every job of the table from the zip: each runner's module ships
        module = job.function.partition(":")[0]
        assert f"contrasat/{module.replace('.', '/')}.py" in names, job.name
    top = {n.split("/")[1] for n in names}
    assert not top & {"tests", "bench", ".venv", "runs", "scripts", "dist", "ext-libs"}
    # of the docs only the QGIS guide ships (the installer's Help button opens it)
    assert [n for n in names if n.startswith("contrasat/docs/")] == ["contrasat/docs/qgis.md"]
    # the engine runs `contrasat finetune` from the zip: the training code ships, its configs and data do not
    training = [n for n in names if n.startswith("contrasat/training/")]
    assert (
        "contrasat/training/finetune/job.py" in training and "contrasat/training/common/export.py" in training
    )
    assert all(n.endswith(".py") for n in training)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    weights = sorted(p.name for p in (REPO / "models" / "weights").glob("*.onnx"))
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("contrasat/models/weights/")) == weights


LOADER = textwrap.dedent(
    """
    import sys
    plugins = sys.argv[1]
    sys.path.insert(0, plugins)  # as QGIS puts the profile's plugin folder on sys.path
    from qgis.core import QgsApplication
    app = QgsApplication([], True)
    app.initQgis()
    from unittest.mock import MagicMock
    import qgis.utils
    from qgis.gui import QgsMapCanvas
    from qgis.PyQt.QtWidgets import QMainWindow

    window, canvas = QMainWindow(), QgsMapCanvas()
    iface = MagicMock()  # the calls the plugin makes on a real QgisInterface, backed by real widgets
    iface.mainWindow.return_value = window
    iface.mapCanvas.return_value = canvas
    iface.activeLayer.return_value = None
    iface.addToolBar.side_effect = window.addToolBar
    iface.addDockWidget.side_effect = window.addDockWidget
    qgis.utils.iface = iface
    qgis.utils.plugin_paths = [plugins]
    qgis.utils.updateAvailablePlugins()
    assert "contrasat" in qgis.utils.available_plugins, qgis.utils.available_plugins
    assert qgis.utils.loadPlugin("contrasat")
    assert qgis.utils.startPlugin("contrasat")  # classFactory + initGui
    import contrasat
    assert contrasat.__file__.startswith(plugins), contrasat.__file__
    plugin = qgis.utils.plugins["contrasat"]
    assert QgsApplication.processingRegistry().providerById("contrasat") is not None
    dock = plugin.show_dock()
    assert dock.tabs.count() >= 2
    assert qgis.utils.unloadPlugin("contrasat")
    assert QgsApplication.processingRegistry().providerById("contrasat") is None
    print("LOADED", contrasat.__file__)
    """
)


def test_zip_installs_into_fresh_profile(plugin_zip, tmp_path):
    plugins = tmp_path / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(plugins)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(plugins)], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=LOAD_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"LOADED {plugins}/contrasat/__init__.py" in done.stdout
