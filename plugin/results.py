"""Turn a finished job into styled map layers and an area-per-class summary (GUI thread only)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QCoreApplication

from .styling import FLOOD_TRANSPARENT_VALUES, polygon_renderer, probability_renderer, style_class_layer


def tr(text: str) -> str:
    """Translate in the results' context."""
    return QCoreApplication.translate("Contrasat", text)


def result_title(task: str) -> str:
    """Layer title of a job's class raster, by model task."""
    return {
        "flood": tr("Flood map"),
        "land_cover": tr("Land cover"),
        "pixel_timeseries": tr("Series land cover"),
    }.get(task, tr("Contrasat map"))


@dataclass
class AreaRow:
    """One line of the area summary."""

    name: str
    area_km2: float
    share: float  # of the mapped (valid) area


def area_rows(result: Any) -> list[AreaRow]:
    """Area per output class in the output's class order, with its share of the mapped area."""
    areas = result.class_area_km2
    total = sum(areas.values()) or 1.0
    return [AreaRow(c.name, areas.get(c.name, 0.0), areas.get(c.name, 0.0) / total) for c in result.classes]


def summary_text(result: Any) -> str:
    """One line for the message bar: flooded area for floods, the largest classes otherwise."""
    if result.flooded_km2 is not None:
        head = tr("Flooded area: {} km²").format(f"{result.flooded_km2:.2f}")
    else:
        rows = sorted(area_rows(result), key=lambda r: r.area_km2, reverse=True)[:3]
        head = ", ".join(f"{r.name} {r.area_km2:.2f} km²" for r in rows)
    return tr("{} (model {}, {})").format(head, result.model_name, result.provider)


def add_result_layers(result: Any, input_name: str) -> list[QgsMapLayer]:
    """Add the class raster (styled from `result.classes`), then probabilities and polygons if written.

    Returns the layers added, class raster first; an output QGIS cannot open is skipped (the caller
    reports a missing class layer).
    """
    card = result.card
    added: list[QgsMapLayer] = []
    title = result_title(card.task)
    layer = QgsRasterLayer(str(result.output), f"{title} ({input_name})", "gdal")
    if not layer.isValid():
        return added
    transparent = FLOOD_TRANSPARENT_VALUES if card.task == "flood" else ()
    style_class_layer(layer, result.classes, card.output_nodata, transparent_values=transparent)
    added.append(layer)

    if result.probabilities:
        probs = QgsRasterLayer(str(result.probabilities), tr("{} probability ({})").format(title, input_name))
        if probs.isValid():
            # flood: p(water) is the last band; otherwise the first class's band stands in
            band = probs.bandCount() if card.task == "flood" else 1
            probs.setRenderer(probability_renderer(probs, band))
            added.append(probs)
    if result.polygons:
        polygons = QgsVectorLayer(
            str(result.polygons), tr("{} polygons ({})").format(title, input_name), "ogr"
        )
        if polygons.isValid():
            polygons.setRenderer(polygon_renderer(result.classes))
            added.append(polygons)
    # Added bottom-up, so the class raster ends on top of its probability layer.
    for item in reversed(added):
        QgsProject.instance().addMapLayer(item)
    return added


def write_area_csv(result: Any, path: str | Path) -> Path:
    """Area per class as CSV, in the runtime's statistics layout (for jobs whose runtime writes none)."""
    rows = area_rows(result)
    values = {c.name: c.value for c in result.classes}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["value", "name", "area_km2", "share", "model"])
        for row in rows:
            writer.writerow(
                [values[row.name], row.name, f"{row.area_km2:.6f}", f"{row.share:.6f}", result.model_name]
            )
    return Path(path)
