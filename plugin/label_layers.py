"""A label layer (polygons or points with a class field) as the GeoJSON document a job's `labels` file holds.

Used by the dock (Fine-tune and Land cover tabs) and by the Processing algorithms; the launcher writes the
document into the run's scratch folder.
"""

from __future__ import annotations

import json
from typing import Any

from .aoi_widget import crs_text

# The runtime's colour fields (models/own_labels.py COLOUR_FIELDS, matched case-insensitively). QGIS cannot
# import that module (rasterio, shapely), so they are named again here; tests/plugin/test_land_cover_dock.py
# checks both lists agree.
COLOUR_FIELDS = ("color", "colour", "hex", "rgb")


def colour_field(names: list[str], class_field: str) -> str | None:
    """The field the runtime would take the class colours from, as the runtime picks it."""
    lowered = {n.lower(): n for n in names if n != class_field}
    return next((lowered[c] for c in COLOUR_FIELDS if c in lowered), None)


def labels_geojson(source: Any, field_name: str) -> dict[str, Any]:
    """The features of a layer or feature source (geometry, class field and a colour field when there is
    one) as a GeoJSON document in the layer's CRS; ValueError when it holds no feature with a geometry."""
    colours = colour_field(source.fields().names(), field_name)
    features = []
    for feature in source.getFeatures():
        if not feature.hasGeometry():
            continue
        value = feature[field_name]
        properties = {field_name: None if value is None else str(value)}
        if colours is not None:
            colour = feature[colours]
            properties[colours] = colour if isinstance(colour, str) else None
        features.append({
            "type": "Feature",
            "properties": properties,
            "geometry": json.loads(feature.geometry().asJson()),
        })  # fmt: skip
    if not features:
        raise ValueError("the label layer holds no feature with a geometry")
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs_text(source.sourceCrs())}},
        "features": features,
    }
