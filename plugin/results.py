"""Turn the engine's job summary into styled map layers and an area-per-class table (GUI thread only).

The summary's field names belong to the CLI (`--progress json`), so it is read tolerantly: anything missing
is taken from the request (output paths), the model card (classes) or the statistics CSV (areas).
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer, QgsVectorLayer

from ..models import jobs
from ..models.card import ClassInfo, ModelCard
from ..models.errors import ModelError
from .cards import read_card, resolve_model
from .layer_choice import OUTPUT_PROPERTY
from .styling import FLOOD_TRANSPARENT_VALUES, polygon_renderer, probability_renderer, style_class_layer

# pre-event flood maps: the runtime's CHANGE_CLASSES, used when the summary does not carry its classes
CHANGE_CLASSES = [
    ClassInfo(0, "dry", "#00000000"),
    ClassInfo(1, "flood water", "#00b4ffff"),
    ClassInfo(2, "permanent water", "#0b2c7aff"),
]


def friendly_provider(name: str) -> str:
    """'CPUExecutionProvider' -> 'CPU', 'CUDAExecutionProvider' -> 'CUDA (GPU)'."""
    short = str(name or "").replace("ExecutionProvider", "")
    return {"CUDA": "CUDA (GPU)", "": "?"}.get(short, short)


def result_title(task: str) -> str:
    """Layer title of a job's class raster, by model task."""
    return {"flood": "Flood map", "land_cover": "Land cover", "pixel_timeseries": "Series land cover"}.get(
        task, "Contrasat map"
    )


@dataclass
class AreaRow:
    """One line of the area summary."""

    value: int
    name: str
    area_km2: float
    share: float  # of the mapped (valid) area


@dataclass
class JobSummary:
    """A finished job as the plugin shows it."""

    task: str
    output: Path
    model_name: str = ""
    provider: str = ""
    classes: list[ClassInfo] = field(default_factory=list)
    class_area_km2: dict[str, float] = field(default_factory=dict)
    flooded_km2: float | None = None
    probabilities: Path | None = None
    polygons: Path | None = None
    statistics: Path | None = None
    nodata: int = 255
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the notes of level 'warning' (e.g. a thin class)
    classifier: Path | None = None  # land cover in the user's classes: the fitted classifier written
    validation: dict[str, Any] = field(default_factory=dict)  # ... and its scores on held-back labels
    raw: dict[str, Any] = field(default_factory=dict)


def _first(data: dict[str, Any], *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) not in (None, "")), None)


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


def _card(data: dict[str, Any], request: Any, task: str) -> ModelCard | None:
    candidates = [_first(data, "model_path", "model_file"), request.options.get("model"), None]
    for candidate in candidates:
        path = resolve_model(candidate, task)
        if path is not None:
            try:
                return read_card(path)
            except ModelError:
                continue
    return None


def _classes(data: dict[str, Any], card: ModelCard | None, request: Any) -> list[ClassInfo]:
    listed = data.get("classes")
    if isinstance(listed, list) and listed and all(isinstance(c, dict) for c in listed):
        try:
            return [
                ClassInfo(int(c["value"]), str(c["name"]), str(c.get("color", "#808080ff"))) for c in listed
            ]
        except (KeyError, TypeError, ValueError):
            pass
    if request.job == "map_floods" and request.options.get("pre_event"):
        return list(CHANGE_CLASSES)
    return list(card.classes) if card is not None else []


def read_area_csv(path: Path) -> dict[str, float]:
    """name -> km² from the runtime's statistics CSV (value, name, area_km2, share, model)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {row["name"]: float(row["area_km2"]) for row in csv.DictReader(fh)}
    except (OSError, KeyError, ValueError):
        return {}


def _task_of(job: str) -> str:
    """The model card task of a table job (map_floods -> flood)."""
    try:
        return jobs.job(job).task
    except KeyError:
        return job


def summary_from_engine(data: dict[str, Any], request: Any) -> JobSummary:
    """The engine's `done` result, completed from the request, the model card and the statistics CSV."""
    task = _task_of(request.job)
    outputs = data.get("outputs") if isinstance(data.get("outputs"), dict) else {}
    merged = {**outputs, **data}
    # outputs.classes is the class raster's path, while the top-level classes is the class table
    class_raster = outputs.get("classes") if isinstance(outputs.get("classes"), str) else None
    card = _card(merged, request, task)

    def output(key: str) -> Path | None:
        written = _path(merged.get(key))
        if written is None and request.options.get(key) and Path(request.options[key]).exists():
            written = Path(request.options[key])
        return written

    statistics = output("statistics")
    areas = _first(merged, "class_area_km2", "class_areas_km2", "areas_km2", "class_areas")
    if not isinstance(areas, dict):
        areas = read_area_csv(statistics) if statistics else {}
    model = _first(merged, "model_name", "model")
    listed = merged.get("notes") if isinstance(merged.get("notes"), list) else []
    notes = [n.get("text", "") if isinstance(n, dict) else n for n in listed]
    warnings = [n.get("text", "") for n in listed if isinstance(n, dict) and n.get("level") == "warning"]
    validation = merged.get("validation") if isinstance(merged.get("validation"), dict) else {}
    flooded = merged.get("flooded_km2")
    return JobSummary(
        task=task,
        output=_path(class_raster or _first(merged, "output", "out")) or request.out,
        model_name=str(model or (card.name if card else "")),
        provider=friendly_provider(str(merged.get("provider", ""))),
        classes=_classes(merged, card, request),
        class_area_km2={str(k): float(v) for k, v in areas.items() if isinstance(v, int | float)},
        flooded_km2=float(flooded) if isinstance(flooded, int | float) else None,
        probabilities=output("probabilities"),
        polygons=output("polygons"),
        statistics=statistics,
        nodata=int(card.output_nodata) if card is not None else 255,
        notes=[str(n) for n in notes],
        warnings=[str(w) for w in warnings],
        classifier=output("classifier") or output("save_model"),
        validation=validation,
        raw=data,
    )


# Class names that mean "not mapped": never an area the user is after (the land-cover cards' class 0).
NO_DATA_NAMES = frozenset({"no data", "nodata", "no_data"})
TOTAL_NAME = "Total"


def area_rows(result: JobSummary, *, only_mapped: bool = False) -> list[AreaRow]:
    """Area per output class with its share of the mapped area.

    `only_mapped` (the dock's table): only classes with an area above zero, never a "no data" class.
    Otherwise every class, as the statistics CSV lists them.
    """
    areas = result.class_area_km2
    total = sum(areas.values()) or 1.0
    rows = [
        AreaRow(c.value, c.name, areas.get(c.name, 0.0), areas.get(c.name, 0.0) / total)
        for c in result.classes
    ]
    if only_mapped:
        rows = [r for r in rows if r.area_km2 > 0 and r.name.strip().lower() not in NO_DATA_NAMES]
    return rows


def total_row(rows: list[AreaRow]) -> AreaRow:
    """The table's last line: the sum of its rows (value -1: not a class)."""
    return AreaRow(-1, TOTAL_NAME, sum(r.area_km2 for r in rows), sum(r.share for r in rows))


def accuracy_report(result: JobSummary) -> str:
    """The fitted classifier's scores on held-back labels as rich text: overall accuracy, F1 per class and
    the warnings; empty for a map made with a model."""
    v = result.validation
    if not isinstance(v.get("overall_accuracy"), int | float):
        return ""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(name))}</td><td align='right'>{f1:.2f}</td></tr>"
        for name, f1 in (v.get("f1") or {}).items()
        if isinstance(f1, int | float)
    )
    text = (
        f"<b>Accuracy on held-back labels</b>: overall {v['overall_accuracy']:.2f}"
        + (f", mean F1 {v['macro_f1']:.2f}" if isinstance(v.get("macro_f1"), int | float) else "")
        + f"<table><tr><th align='left'>Class</th><th>F1</th></tr>{rows}</table>"
    )
    if v.get("method"):
        text += f"<small>{esc(str(v['method']))}</small>"
    if result.warnings:
        text += "<br>" + "".join(f"<p style='color:#b35900'>⚠ {esc(w)}</p>" for w in result.warnings)
    return text


def summary_text(result: JobSummary) -> str:
    """One line for the message bar: flooded area for floods, the largest classes otherwise."""
    if result.flooded_km2 is not None:
        head = f"Flooded area: {result.flooded_km2:.2f} km²"
    else:
        rows = sorted(area_rows(result, only_mapped=True), key=lambda r: r.area_km2, reverse=True)[:3]
        head = ", ".join(f"{r.name} {r.area_km2:.2f} km²" for r in rows)
    return f"{head} (model {result.model_name}, on {result.provider})"


def unique_label(title: str, input_name: str, model_name: str = "") -> str:
    """What goes in brackets after a result's title: the input's name, with the model's name when a layer
    of that name is already in the project, and a number after that; two results never share a name."""
    taken = {layer.name() for layer in QgsProject.instance().mapLayers().values()}
    base = input_name
    if f"{title} ({base})" not in taken:
        return base
    if model_name and model_name not in input_name:
        base = f"{input_name}, {model_name}"
        if f"{title} ({base})" not in taken:
            return base
    return next(f"{base} #{n}" for n in range(2, 10_000) if f"{title} ({base} #{n})" not in taken)


def add_result_layers(result: JobSummary, input_name: str) -> list[QgsMapLayer]:
    """Add the class raster (styled from its class table), then probabilities and polygons if written.

    Returns the layers added, class raster first; an output QGIS cannot open is skipped (the caller
    reports a missing class layer).
    """
    added: list[QgsMapLayer] = []
    title = result_title(result.task)
    input_name = unique_label(title, input_name, result.model_name)
    layer = QgsRasterLayer(str(result.output), f"{title} ({input_name})", "gdal")
    if not layer.isValid():
        return added
    transparent = FLOOD_TRANSPARENT_VALUES if result.task == "flood" else ()
    style_class_layer(layer, result.classes, result.nodata, transparent_values=transparent)
    added.append(layer)

    if result.probabilities:
        probs = QgsRasterLayer(str(result.probabilities), f"{title} probability ({input_name})")
        if probs.isValid():
            # flood: p(water) is the last band; otherwise the first class's band stands in
            band = probs.bandCount() if result.task == "flood" else 1
            probs.setRenderer(probability_renderer(probs, band))
            added.append(probs)
    if result.polygons:
        polygons = QgsVectorLayer(str(result.polygons), f"{title} polygons ({input_name})", "ogr")
        if polygons.isValid():
            polygons.setRenderer(polygon_renderer(result.classes))
            added.append(polygons)
    # Added bottom-up, so the class raster ends on top of its probability layer.
    for item in reversed(added):
        # marked before it is added: input lists refresh on layersAdded and must already skip it
        item.setCustomProperty(OUTPUT_PROPERTY, True)
        QgsProject.instance().addMapLayer(item)
    return added


def write_area_csv(result: JobSummary, path: str | Path) -> Path:
    """Area per class as CSV, in the runtime's statistics layout (for jobs whose runtime writes none)."""
    rows = area_rows(result)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["value", "name", "area_km2", "share", "model"])
        for row in rows:
            writer.writerow(
                [row.value, row.name, f"{row.area_km2:.6f}", f"{row.share:.6f}", result.model_name]
            )
    return Path(path)
