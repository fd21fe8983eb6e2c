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
        "ContrasatSettings", "ContrasatDependencies", "ContrasatHelp",
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


def test_a_typed_existing_output_is_replaced_only_when_the_user_says_so(
    qgis_iface, add_raster, s1_sample, tmp_path, monkeypatch
):
    from qgis.PyQt.QtWidgets import QDialog, QMessageBox

    add_raster(s1_sample, "S1 sample", qgis_iface)
    existing = tmp_path / "earlier_flood.tif"
    existing.write_bytes(b"an earlier result")
    asked = []
    for answer, result in ((QMessageBox.No, QDialog.Rejected), (QMessageBox.Yes, QDialog.Accepted)):
        monkeypatch.setattr(
            QMessageBox, "question", lambda *a, answer=answer, **k: asked.append(a[2]) or answer
        )
        dialog = MapFloodsDialog(qgis_iface.activeLayer())
        dialog.output_widget.setFilePath(str(existing))  # typed: no file dialog asked
        dialog.buttons.button(QDialogButtonBox.Ok).click()
        assert dialog.result() == result
    assert len(asked) == 2 and "earlier_flood.tif already exists" in asked[0]
    # a new file is not asked about
    dialog = MapFloodsDialog(qgis_iface.activeLayer())
    dialog.output_widget.setFilePath(str(tmp_path / "new_flood.tif"))
    dialog.buttons.button(QDialogButtonBox.Ok).click()
    assert dialog.result() == QDialog.Accepted and len(asked) == 2
    assert existing.read_bytes() == b"an earlier result"  # the dialog itself never touches the file


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


def test_toolbar_buttons_have_distinct_icons(plugin):
    from qgis.PyQt.QtCore import QBuffer, QIODevice

    def pixels(action):
        buffer = QBuffer()
        buffer.open(QIODevice.WriteOnly)
        action.icon().pixmap(24, 24).save(buffer, "PNG")
        return bytes(buffer.data())

    toolbar = plugin.toolbar.actions()
    assert len(toolbar) == 2 and all(not a.icon().isNull() for a in toolbar)
    assert pixels(toolbar[0]) != pixels(toolbar[1])


def test_inputs_prefer_sentinel_layers_and_never_outputs(
    plugin, qgis_iface, add_raster, s1_sample, s2_sample, tmp_path
):
    from contrasat.plugin.layer_choice import OUTPUT_PROPERTY, preferred_layer

    s2 = add_raster(s2_sample, "S2", qgis_iface)
    s1 = add_raster(s1_sample, "S1")
    output = add_raster(s1_sample, "Flood map (S1)")
    output.setCustomProperty(OUTPUT_PROPERTY, True)  # as the plugin marks every result layer
    qgis_iface.setActiveLayer(output)
    assert preferred_layer("S1") is s1 and preferred_layer("S2") is s2
    dock = plugin.show_dock()
    assert dock.panels["map_floods"].layer_combos["primary"].currentLayer() is s1
    assert dock.panels["land_cover"].layer_combos["primary"].currentLayer() is s2
    combo = dock.panels["map_floods"].layer_combos["primary"]
    assert output not in [combo.layer(i) for i in range(combo.count())]
    assert MapFloodsDialog(output).selected_layer() is s1  # the active output layer is not offered


def test_result_outside_the_view_is_zoomed_to_and_one_in_view_is_not(
    plugin, qgis_iface, add_raster, s1_sample
):
    from qgis.core import QgsRectangle

    layer = add_raster(s1_sample, "S1")
    canvas = qgis_iface.mapCanvas()
    canvas.resize(400, 400)
    canvas.setDestinationCrs(layer.crs())
    far = QgsRectangle(10, 10, 11, 11)  # somewhere else on Earth
    canvas.setExtent(far)
    plugin._zoom_if_outside(layer)
    assert canvas.extent().intersects(layer.extent())
    inside = QgsRectangle(layer.extent().center().x() - 0.001, layer.extent().center().y() - 0.001,
                          layer.extent().center().x() + 0.001, layer.extent().center().y() + 0.001)  # fmt: skip
    canvas.setExtent(inside)
    before = canvas.extent()
    plugin._zoom_if_outside(layer)
    assert canvas.extent() == before
