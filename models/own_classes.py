"""Land cover in the analyst's own classes: labels in, a fitted classifier and its map out, without torch.

Steps, every check before any model runs: read the label layer (own_labels), open the rasters, put the labels
on the grid (own_pixels), keep pixels with data; then extract features (own_features), validate the classifier
on held-back polygons and fit it on all of them (own_head), build ONE ONNX model, features + classifier
(own_export), and map with it through the ordinary land-cover pipeline. The method (own_head.METHODS) is by
default the own-classes study's winner: a random forest on the bands and their neighbourhood means, whose
features are an ONNX graph (own_context) read like an extractor; or the head on the pre-trained encoders. The map, its extras and the saved
classifier are one output set: all written, or none.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from . import own_context, tiled_job
from .aoi import AOI, aoi_window, load_aoi
from .card import FEATURES, ModelCard, read_card
from .errors import InputError
from .execution import Execution
from .notes import Note, info
from .output_set import OutputSet, verify_model
from .own_export import build_classifier, build_forest_classifier, save_classifier
from .own_features import extract, gather, keep_valid
from .own_head import ENCODER_HEAD, FOREST, METHODS, TREES, fit_head, label_warnings, validate
from .own_labels import POINT_TYPES, LabelLayer, read_labels
from .own_pixels import place_labels
from .pipeline import GDAL_CACHE_BYTES, JobResult, _open_inputs, _run_job, plan_outputs
from .polygons import DEFAULT_MIN_PIXELS
from .rasters import Grid, _band_indexes, detect_level, detect_units
from .registry import WEIGHTS_DIR, resolve_model

EXTRACTORS = {"S2": "encoder_s2_multimodal", "S1": "encoder_s1_multimodal"}  # bundled defaults per sensor
DEFAULT_FIELD = "class"
FIT_SHARE = 0.2  # share of the progress bar the fitting takes; mapping takes the rest


@dataclass
class OwnClassesResult(JobResult):
    """A land-cover job in the user's classes: the map's result plus the labels, validation and classifier."""

    classifier: Path | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        summary = super().to_dict()
        summary["outputs"]["classifier"] = str(self.classifier) if self.classifier else None
        summary["labels"] = self.labels
        summary["validation"] = self.validation
        return summary

    def report_lines(self) -> list[str]:
        """Validation on held-back polygons, as printed by the CLI."""
        v = self.validation
        lines = [f"wrote {self.classifier}"] if self.classifier else []
        lines.append(f"validation ({v['method']}): overall accuracy {v['overall_accuracy']:.3f}, "
                     f"macro F1 {v['macro_f1']:.3f}")  # fmt: skip
        width = max(len(n) for n in v["f1"])
        lines.append(f"  {'':<{width}}  columns of 'mapped as': {', '.join(v['f1'])}")
        for (name, f1), row in zip(v["f1"].items(), v["confusion_matrix"], strict=True):
            counts = self.labels["classes"][name]
            lines.append(f"  {name:<{width}}  F1 {f1:.3f}  {counts['features']:>3} features "
                         f"{counts['pixels']:>7} px  mapped as: {' '.join(f'{n:>6}' for n in row)}")  # fmt: skip
        return lines

    def text_lines(self) -> list[str]:
        """The map's lines, then the classifier and its validation, then the notes."""
        lines = super().text_lines()
        first_note = next((i for i, line in enumerate(lines) if line.startswith("note: ")), len(lines))
        return lines[:first_note] + self.report_lines() + lines[first_note:]


def resolve_extractors(model: str | Path | None, sensors: list[str]) -> list[tuple[Path, ModelCard]]:
    """The feature extractors: the one named, or the bundled one of each sensor given (S2, then S1)."""
    if model:
        path = resolve_model(model, FEATURES)
        card = read_card(path)
        if card.task != FEATURES:
            raise InputError(
                f"model {card.name} is a '{card.task}' model; with training labels the model must be a "
                "feature extractor (task 'features'), or left empty for the bundled encoders"
            )
        return [(path, card)]
    found = []
    for sensor in sensors:
        path = WEIGHTS_DIR / f"{EXTRACTORS[sensor]}.onnx"
        if not path.is_file():
            raise InputError(f"the bundled feature extractor {path.stem} is not installed")
        found.append((path, read_card(path)))
    return found


def forest_bands(s2: str | Path, notes: list[Note]) -> tuple[str, ...]:
    """The forest's bands: the 13 L1C bands as in the study; the 12 L2A bands (no B10) when the raster is
    L2A. A raster that is neither is left to the mapping run's own band check (its usual error)."""
    l1c, l2a = own_context.bands_of(False), own_context.bands_of(True)
    try:
        ds = rasterio.open(s2)
    except Exception:  # unreadable: the mapping run's opening refuses it in its own words
        return l1c
    with ds:
        for bands in (l1c, l2a):
            try:
                _band_indexes(ds, own_context.input_spec(bands), "S2", Path(s2).name)
            except InputError:
                continue
            if bands == l2a:
                notes.append(info("Sentinel-2 L2A (no B10): the forest uses its 12 bands; the study had L1C"))
            return bands
    return l1c


def forest_features(folder: Path, bands: tuple[str, ...]) -> list[tuple[Path, ModelCard]]:
    """The bands-context feature graph written into `folder`, as the one 'extractor' of the forest."""
    import onnx

    path = folder / "bands_context.onnx"
    onnx.save(own_context.feature_model(bands), str(path))
    return [(path, own_context.card(bands))]


def _card(layer: LabelLayer, extractors: list[tuple[Path, ModelCard]], name: str,
          method: str = ENCODER_HEAD) -> ModelCard:  # fmt: skip
    """The classifier's card before fitting (inputs, classes, tiling); training facts are added later."""
    first = extractors[0][1]
    inputs = [spec for _, c in extractors for spec in c.inputs]
    what = (f"a random forest ({TREES} trees) on {first.description}" if method == FOREST else
            f"a logistic-regression head on the features of {', '.join(c.name for _, c in extractors)}")  # fmt: skip
    return ModelCard(
        name=name, task="land_cover", inputs=inputs, classes=layer.classes, tile_size=first.tile_size,
        overlap=first.overlap, resolution_m=first.resolution_m,
        description=f"land cover in the classes of {layer.path.name} ({len(layer.classes)} classes), {what}",
        license=first.license,
    )  # fmt: skip


@dataclass
class Training:
    """What fitting produced: the classifier's card (complete) and the ONNX model."""

    card: ModelCard
    model: object
    labels: dict[str, Any]
    validation: dict[str, Any]


def _counts(layer: LabelLayer, pixels) -> dict[str, dict[str, int]]:
    return {
        c.name: {"features": len(np.unique(pixels.group[pixels.cls == c.value])),
                 "pixels": int(np.sum(pixels.cls == c.value))}
        for c in layer.classes
    }  # fmt: skip


# The two places that lean on the tiled pipeline's internals (models/pipeline.py): opening inputs as a
# mapping run does, and loading a model with the run's execution settings.
def _open_for_fitting(card: ModelCard, sources: dict, aoi: AOI, stack: ExitStack) -> tuple[list, Grid]:
    """The inputs opened and aligned, their units and levels decided exactly as the mapping run will decide
    them (that run reports them as notes); an AOI off the raster is refused here, before any work."""
    inputs, _, grid = _open_inputs(card, sources, None, stack, OutputSet())
    geometry = load_aoi(aoi, grid.crs, None)
    whole = Window(0, 0, grid.width, grid.height)
    window = whole if geometry is None else aoi_window(geometry, grid.transform, grid.width, grid.height)
    for raster in inputs:
        detect_units(raster, window)
        detect_level(raster, whole)
    return inputs, grid


def _load(path: Path, config: Execution):
    return tiled_job.load(path, config)


def fit_classifier(
    layer: LabelLayer,
    extractors: list[tuple[Path, ModelCard]],
    sources: dict[str, str | Path | None],
    card: ModelCard,
    aoi: AOI,
    config: Execution,
    notes: list[Note],
    is_cancelled: Callable[[], bool] | None = None,
    method: str = ENCODER_HEAD,
) -> Training:
    """Check the labels on the grid, extract features, validate by polygon, fit; the classifier as ONNX."""
    with ExitStack() as stack:
        inputs, grid = _open_for_fitting(card, sources, aoi, stack)
        placed = place_labels(layer, grid, notes)
        pixels = keep_valid(inputs, grid, gather(placed), layer)
        counts = _counts(layer, pixels)
        points = all(f.geometry.geom_type in POINT_TYPES for f in layer.features)
        notes.extend(label_warnings(layer.classes, [c["pixels"] for c in counts.values()],
                                    [c["features"] for c in counts.values()], points))  # fmt: skip
        loaded = [_load(p, config) for p, _ in extractors]
        x = extract(loaded, inputs, grid, pixels, is_cancelled)
    validation = validate(x, pixels.cls, pixels.group, layer.classes, method)
    head = fit_head(x, pixels.cls, method)
    labels = {"file": layer.path.name, "field": layer.field, "classes": counts,
              "codes": dict(zip([c.name for c in layer.classes], layer.codes, strict=True)) if layer.codes else None}  # fmt: skip
    card.metrics = {"validation": validation}
    if method == FOREST:
        classifier = {"type": "random forest (scikit-learn)", "n_estimators": TREES, "max_features": "sqrt",
                      "min_samples_leaf": 1, "features": extractors[0][1].description}  # fmt: skip
    else:
        classifier = {"type": "multinomial logistic regression on standardised features (scikit-learn)",
                      "C": 1.0, "class_weight": "balanced"}  # fmt: skip
    card.training = {
        "kind": "own_classes", "method": method, "labels": labels,
        "encoders": [] if method == FOREST else [{"name": c.name, "file": p.name} for p, c in extractors],
        "head": {**classifier, "pixels_used": len(pixels.cls), "features": int(x.shape[1])},
    }  # fmt: skip
    model = (build_forest_classifier(head, card) if method == FOREST
             else build_classifier([p for p, _ in extractors], head, card))  # fmt: skip
    return Training(card, model, labels, validation)


def classify_own(
    s2: str | Path,
    out: str | Path,
    *,
    labels: str | Path,
    field: str | None = None,
    s1: str | Path | None = None,
    aoi: AOI = None,
    model: str | Path | None = None,
    probabilities: str | Path | None = None,
    polygons: str | Path | None = None,
    statistics: str | Path | None = None,
    save_model: str | Path | None = None,
    method: str | None = None,
    min_polygon: int = DEFAULT_MIN_PIXELS,
    config: Execution | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> OwnClassesResult:
    """Fit a classifier on the labels of `labels` (class field `field`) and map the classes over S2 (and S1).

    `method`: FOREST (default; S2 only) or ENCODER_HEAD (the pre-trained encoders, or the extractor `model`)."""
    config, notes = (config or Execution()).checked()
    method = method or FOREST
    if method not in METHODS:
        raise InputError(f"unknown method '{method}' (one of: {', '.join(METHODS)})")
    if min_polygon < 1:
        raise InputError(f"the smallest polygon must be 1 pixel or more, not {min_polygon}")
    if method == FOREST and model:
        raise InputError(f"a feature extractor model is used by the {ENCODER_HEAD} method only; the {FOREST} "
                         "method classifies the bands themselves (leave the model empty)")  # fmt: skip
    layer = read_labels(labels, field or DEFAULT_FIELD)
    if layer.ignored:
        notes.append(info(f"{layer.ignored} label feature(s) that are neither polygons nor points ignored"))
    if method == FOREST and s1 is not None:
        notes.append(info(f"Sentinel-1 is not used by the {FOREST} method (it classifies the Sentinel-2 bands); "
                          f"the {ENCODER_HEAD} method uses it"))  # fmt: skip
        s1 = None
    with tempfile.TemporaryDirectory() as tmp:
        return _classify(s2, s1, out, layer, labels, model, aoi, probabilities, polygons, statistics, save_model,
                         method, min_polygon, config, notes, Path(tmp), progress, is_cancelled)  # fmt: skip


def _classify(s2, s1, out, layer, labels, model, aoi, probabilities, polygons, statistics, save_model, method,
              min_polygon, config, notes, tmp, progress, is_cancelled) -> OwnClassesResult:  # fmt: skip
    sources = {"S2": s2, "S1": s1}
    if method == FOREST:
        extractors = forest_features(tmp, forest_bands(s2, notes))
    else:
        extractors = resolve_extractors(model, [k for k, v in sources.items() if v is not None])
    name = Path(save_model).stem if save_model else f"own classes of {layer.path.stem}"
    card = _card(layer, extractors, name, method)
    aoi_file = aoi if isinstance(aoi, str | Path) else None
    outputs = plan_outputs([s2, s1, aoi_file, labels, *(p for p, _ in extractors)], out, probabilities,
                           polygons, statistics)  # fmt: skip
    if save_model is not None:
        outputs.add("classifier", save_model, "model").verify = verify_model(len(layer.classes))
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            result = _fit_and_map(layer, extractors, sources, card, outputs, aoi, config, notes, min_polygon,
                                  tmp, progress, is_cancelled, method)  # fmt: skip
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    return result


def _fit_and_map(layer, extractors, sources, card, outputs, aoi, config, notes, min_polygon, tmp,
                 progress, is_cancelled, method) -> OwnClassesResult:  # fmt: skip
    training = fit_classifier(layer, extractors, sources, card, aoi, config, notes, is_cancelled, method)
    saved = next((o for o in outputs.outputs if o.label == "classifier"), None)
    model_path = saved.temp if saved is not None else tmp / "classifier.onnx"
    save_classifier(training.model, model_path)
    if progress is not None:
        progress(FIT_SHARE)
    mapped = _run_job("land_cover", sources, outputs, card=training.card, model_path=model_path, aoi=aoi,
                      pre_event=None, config=config, notes=notes, min_polygon=min_polygon,
                      progress=None if progress is None else (lambda p: progress(FIT_SHARE + (1 - FIT_SHARE) * p)),
                      is_cancelled=is_cancelled)  # fmt: skip
    fields = {k: getattr(mapped, k) for k in JobResult.__dataclass_fields__}
    return OwnClassesResult(**fields, classifier=saved.target if saved is not None else None,
                            labels=training.labels, validation=training.validation)  # fmt: skip
