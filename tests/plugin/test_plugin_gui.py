"""Loading and unloading the plugin, its action and the Map floods dialog (no job is run here)."""

from __future__ import annotations

import zipfile

import pytest
from contrasat import classFactory
from contrasat.plugin import map_floods_dialog
from contrasat.plugin.map_floods_dialog import MapFloodsDialog
from contrasat.plugin.paths import default_output_dir, layer_file_path, normalise_output_path
from qgis.core import QgsProject, QgsVectorLayer
from qgis.PyQt.QtWidgets import QAction, QDialog, QDialogButtonBox, QToolBar


def _contrasat_widgets(qgis_iface):
    window = qgis_iface.mainWindow()
    toolbars = [t for t in window.findChildren(QToolBar) if "Contrasat" in (t.objectName() + t.windowTitle())]
    actions = [a for a in window.findChildren(QAction) if a.objectName().startswith("Contrasat")]
    return toolbars, actions


def test_init_gui_adds_action_to_toolbar_and_raster_menu(plugin, qgis_iface):
    action = plugin.map_floods_action
    assert action is not None and action.text() == "Map floods"
    assert not action.icon().isNull()
    assert plugin.toolbar.windowTitle() == "Contrasat"
    assert action in plugin.toolbar.actions()
    qgis_iface.addPluginToRasterMenu.assert_any_call("&Contrasat", action)
    menu = [call.args[1] for call in qgis_iface.addPluginToRasterMenu.call_args_list]
    assert menu == plugin.actions
    assert [a.objectName() for a in plugin.actions] == [
        "ContrasatMapFloods", "ContrasatPanel", "ContrasatLandCover", "ContrasatClassifySeries",
        "ContrasatSettings", "ContrasatDependencies",
    ]  # fmt: skip
    assert all(a.text() and a.toolTip() for a in plugin.actions)
    toolbars, actions = _contrasat_widgets(qgis_iface)
    assert toolbars == [plugin.toolbar] and set(actions) == set(plugin.actions)


def test_unload_leaves_nothing_behind(qgis_iface, qgis_new_project, flush_deletes):
    instance = classFactory(qgis_iface)
    instance.initGui()
    actions = list(instance.actions)
    instance.show_dock()  # the dock and its canvas tools must go too
    instance.unload()
    flush_deletes()
    removed = [call.args[1] for call in qgis_iface.removePluginRasterMenu.call_args_list]
    assert removed == actions
    assert instance.dock is None and instance.provider is None
    toolbars, actions = _contrasat_widgets(qgis_iface)
    assert toolbars == [] and actions == []
    assert instance.toolbar is None and instance.actions == []
    # QGIS reloads a plugin by unloading and loading it again: that must work too
    instance.initGui()
    instance.unload()
    flush_deletes()
    assert _contrasat_widgets(qgis_iface) == ([], [])


def test_dialog_lists_only_file_rasters_and_preselects_active(
    qgis_iface, add_raster, s1_sample, write_raster, tmp_path
):
    import numpy as np

    QgsProject.instance().setFileName(str(tmp_path / "project.qgz"))  # outputs go next to the project
    other = add_raster(write_raster(tmp_path / "other.tif", np.zeros((2, 8, 8), np.float32)), "other")
    s1 = add_raster(s1_sample, "S1 sample", qgis_iface)  # active layer
    zipped = tmp_path / "zipped.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(s1_sample, "s1.tif")
    in_zip = add_raster(f"/vsizip/{zipped}/s1.tif", "in zip")  # readable by GDAL, but not a plain file
    vector = QgsVectorLayer("Point?crs=EPSG:4326", "points", "memory")
    QgsProject.instance().addMapLayer(vector)

    assert layer_file_path(in_zip) is None and layer_file_path(vector) is None
    dialog = MapFloodsDialog(qgis_iface.activeLayer())
    offered = [dialog.layer_combo.layer(i) for i in range(dialog.layer_combo.count())]
    assert set(offered) == {s1, other}
    assert dialog.selected_layer() is s1
    expected = tmp_path / "contrasat" / "S1_sample_flood.tif"
    assert dialog.output_path() == expected
    assert dialog.buttons.button(QDialogButtonBox.Ok).isEnabled()

    # changing the layer updates an untouched default
    dialog.layer_combo.setLayer(other)
    assert dialog.output_path() == tmp_path / "contrasat" / "other_flood.tif"
    # an existing result is never proposed again
    expected.parent.mkdir()
    expected.touch()
    dialog.layer_combo.setLayer(s1)
    assert dialog.output_path() == tmp_path / "contrasat" / "S1_sample_flood_2.tif"
    # a typed path is kept when the layer changes, and gets a .tif extension
    dialog.output_widget.setFilePath(str(tmp_path / "mine"))
    dialog.layer_combo.setLayer(other)
    assert dialog.output_path() == tmp_path / "mine.tif"


def test_dialog_without_usable_layer_disables_ok(qgis_iface, qgis_new_project):
    dialog = MapFloodsDialog(None)
    assert dialog.selected_layer() is None
    assert not dialog.buttons.button(QDialogButtonBox.Ok).isEnabled()
    assert not dialog.hint.isHidden()


def test_action_opens_dialog_and_starts_job(plugin, s1_layer, monkeypatch, tmp_path):
    """Triggering the action runs the dialog's choice through run_map_floods (dialog accepted in code)."""
    QgsProject.instance().setFileName(str(tmp_path / "project.qgz"))
    monkeypatch.setattr(map_floods_dialog.MapFloodsDialog, "exec_", lambda self: QDialog.Accepted)
    calls = []
    monkeypatch.setattr(plugin, "run_map_floods", lambda layer, out: calls.append((layer, out)))
    plugin.map_floods_action.trigger()
    assert calls == [(s1_layer, tmp_path / "contrasat" / "Spain_7370579_S1Hand_flood.tif")]


def test_rejected_dialog_starts_nothing(plugin, s1_layer, monkeypatch):
    monkeypatch.setattr(map_floods_dialog.MapFloodsDialog, "exec_", lambda self: QDialog.Rejected)
    monkeypatch.setattr(plugin, "run_map_floods", lambda *a: pytest.fail("job started after Cancel"))
    plugin.map_floods_action.trigger()


def test_default_output_dir_is_project_folder_or_user_data(qgis_new_project, tmp_path):
    import tempfile

    folder = default_output_dir()
    assert folder.parts[-2:] == ("contrasat", "outputs")  # a per-user data folder, not the temp folder
    assert not str(folder).startswith(tempfile.gettempdir())
    project = tmp_path / "p.qgz"
    QgsProject.instance().write(str(project))
    assert default_output_dir() == tmp_path / "contrasat"


def test_normalise_output_path(tmp_path):
    assert normalise_output_path(tmp_path / "a") == tmp_path / "a.tif"
    assert normalise_output_path(tmp_path / "a.TIFF") == tmp_path / "a.TIFF"
    assert normalise_output_path(tmp_path / "a.v2") == tmp_path / "a.v2.tif"
