#!/usr/bin/env python3
"""Screenshot of QGIS with the bundled sample and a Contrasat flood map, taken under Xvfb.

    python scripts/screenshot_qgis.py [--model PATH_OR_NAME] [--out docs/img/qgis_flood.png]

Starts the real QGIS desktop (`qgis`) inside `xvfb-run` with a throw-away profile where the plugin is
enabled (a link to this repository), loads the Sentinel-2 and Sentinel-1 samples, runs Map floods from the
Contrasat dock, waits for the styled layer, grabs the main window and quits. The default model is the
bundled flood model; `--model` takes another name or .onnx path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "resources" / "sample"
SIZE = (1600, 1000)
TIMEOUT_S = 300

# Runs inside QGIS (qgis --code): `iface` and the loaded plugin are available through qgis.utils.
IN_QGIS = textwrap.dedent(
    """
    import os
    from qgis.core import QgsApplication, QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsProject
    from qgis.core import QgsRasterLayer
    from qgis.PyQt.QtCore import QTimer
    from qgis.utils import iface, plugins

    S1, S2, MODEL, OUT, WORK = {s1!r}, {s2!r}, {model!r}, {out!r}, {work!r}

    def fail(message):
        print("SCREENSHOT FAILED:", message, flush=True)
        os._exit(3)

    iface.mainWindow().resize({width}, {height})
    iface.mainWindow().showNormal()
    s2 = QgsRasterLayer(S2, "Sentinel-2 true colour", "gdal")
    renderer = QgsMultiBandColorRenderer(s2.dataProvider(), 4, 3, 2)
    for setter, band in ((renderer.setRedContrastEnhancement, 4), (renderer.setGreenContrastEnhancement, 3),
                         (renderer.setBlueContrastEnhancement, 2)):
        enhancement = QgsContrastEnhancement(s2.dataProvider().dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(0)
        enhancement.setMaximumValue(2500)
        setter(enhancement)
    s2.setRenderer(renderer)
    s1 = QgsRasterLayer(S1, "Spain_7370579_S1Hand", "gdal")
    QgsProject.instance().addMapLayer(s2)
    QgsProject.instance().addMapLayer(s1)
    iface.layerTreeView().layerTreeModel().rootGroup().findLayer(s1.id()).setItemVisibilityChecked(False)
    plugin = plugins.get("contrasat") or fail("the contrasat plugin is not loaded")
    dock = plugin.show_dock("map_floods")
    dock.output_dir.setFilePath(WORK)  # maps go to the throw-away folder, not the user's temp
    panel = dock.panels["map_floods"]
    if MODEL and not panel.model_picker.set_model_path(MODEL):
        fail("cannot use model " + MODEL)
    panel.set_layer("primary", s1)
    panel.polygons.setChecked(False)
    task = dock.run_panel(panel) or fail(dock.message.text())

    def shoot():
        iface.mainWindow().grab().save(OUT)
        print("SCREENSHOT", OUT, flush=True)
        QgsProject.instance().setDirty(False)
        os._exit(0)  # no "save project?" question, no profile clean-up needed: it is thrown away

    def poll():
        if not task.outcome.done:
            QTimer.singleShot(200, poll)
            return
        if not task.outcome.succeeded:
            fail(task.outcome.error or "cancelled")
        iface.mapCanvas().setExtent(s1.extent())
        iface.mapCanvas().refresh()
        QTimer.singleShot(4000, shoot)

    QTimer.singleShot(500, poll)
    """
)


def make_profile(root: Path) -> Path:
    """A profiles folder whose default profile has the plugin (a link to the repo) enabled."""
    profile = root / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "contrasat").symlink_to(REPO, target_is_directory=True)
    settings = profile / "QGIS"
    settings.mkdir()
    (settings / "QGIS3.ini").write_text(
        "[PythonPlugins]\ncontrasat=true\n\n"
        "[qgis]\ncheckVersion=false\nshowTips=false\nshowTips322=false\n"
        "[migration]\nsettings=true\nfileVersion=2\n"
    )
    return root  # --profiles-path takes the folder that holds `profiles/`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model name or .onnx path (default: bundled flood model)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "qgis_flood.png")
    args = parser.parse_args(argv)
    for tool in ("xvfb-run", "qgis"):
        if shutil.which(tool) is None:
            print(f"needs {tool} on PATH", file=sys.stderr)
            return 2
    model = str(Path(args.model).absolute()) if args.model.endswith(".onnx") else args.model
    out = args.out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="contrasat_shot_") as tmp:
        root = Path(tmp)
        code = root / "shot.py"
        code.write_text(
            IN_QGIS.format(
                s1=str(SAMPLE / "Spain_7370579_S1Hand.tif"), s2=str(SAMPLE / "Spain_7370579_S2Hand.tif"),
                model=model, out=str(out), work=str(root / "maps"), width=SIZE[0], height=SIZE[1],
            )
        )  # fmt: skip
        env = dict(os.environ)
        # QGIS runs Debian's python3; the runtime's packages live in this project's venv
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [sysconfig.get_paths()["purelib"], env.get("PYTHONPATH")])
        )
        env.setdefault("XDG_RUNTIME_DIR", tmp)
        command = [
            "xvfb-run", "-a", "-s", f"-screen 0 {SIZE[0]}x{SIZE[1]}x24",
            "qgis", "--profiles-path", str(make_profile(root)), "--nologo", "--noversioncheck",
            "--code", str(code),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"QGIS did not finish within {TIMEOUT_S} s", file=sys.stderr)
            return 1
    if done.returncode != 0 or not out.is_file():
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
