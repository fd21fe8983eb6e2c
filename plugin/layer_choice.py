"""Which raster layers a job is offered: never the plugin's outputs, and Sentinel-1/2 looking ones first."""

from __future__ import annotations

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer

from ..models.bands import normalise_band_name
from .paths import layer_file_path

OUTPUT_PROPERTY = "contrasat/output"


def is_output(layer: QgsMapLayer) -> bool:
    """A layer the plugin added as a job result (marked when added)."""
    return bool(layer.customProperty(OUTPUT_PROPERTY, False))


def excluded_layers() -> list[QgsMapLayer]:
    """Raster layers no job may take: outputs of the plugin and rasters the engine cannot open by path."""
    layers = QgsProject.instance().mapLayers().values()
    return [
        lyr
        for lyr in layers
        if isinstance(lyr, QgsRasterLayer) and (is_output(lyr) or layer_file_path(lyr) is None)
    ]


def sensor_score(layer: QgsRasterLayer, sensor: str) -> int:
    """How much a layer looks like `sensor` ('S1' or 'S2'): band descriptions first, then band count."""
    count = layer.bandCount()
    # QGIS names a described band "Band 1: VV"; the description is what the runtime matches on
    names = {normalise_band_name(layer.bandName(i).split(": ", 1)[-1]) for i in range(1, count + 1)}
    if sensor == "S1":
        if {"VV", "VH"} <= names:
            return 3
        return 2 if count == 2 else 0
    if sensor == "S2":
        if {"B04", "B08"} <= names:
            return 3
        return 2 if count in (12, 13) else 0
    return 0


def preferred_layer(sensor: str, taken: list[QgsMapLayer] | None = None) -> QgsRasterLayer | None:
    """The best candidate for a sensor among usable layers (outputs excluded), None when nothing fits."""
    hidden = {lyr.id() for lyr in excluded_layers()}
    taken_ids = {lyr.id() for lyr in taken or []}
    candidates = [
        lyr
        for lyr in QgsProject.instance().mapLayers().values()
        if isinstance(lyr, QgsRasterLayer) and lyr.id() not in hidden
    ]
    scored = [(sensor_score(lyr, sensor), lyr.id() not in taken_ids, lyr) for lyr in candidates]
    scored = [s for s in scored if s[0] > 0]
    if not scored:
        return None
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    return scored[0][2]
