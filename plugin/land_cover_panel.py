"""The dock's Land cover tab. It leads with "My classes": a classifier fitted on the analyst's own polygons or
points (a layer and its class field, or classes added with a name and colour and drawn on the map) over the
pre-trained encoders' features, mapped in those classes. The other choice is a bundled fixed-class model,
with one line saying how many sites trained it and what it scores on sites it never saw.

Both run the table's land-cover job (models/jobs.py) through the launcher; with labels the job also writes
the fitted classifier, which "Save classifier" (in the dock) copies into the user's models folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from qgis.gui import QgisInterface
from qgis.PyQt.QtWidgets import QLabel, QRadioButton, QVBoxLayout, QWidget

from ..models.errors import ModelError
from . import engine_env
from .cards import DEFAULTS, WEIGHTS_DIR, read_card
from .job_panel import JobKind, JobPanel, check_tiling
from .label_drawing import LabelDrawer
from .labels_box import LabelsBox
from .launcher import JobRequest
from .paths import unique_output_path
from .settings import RunSettings

SCRATCH_NAME = "Land-cover training polygons"
FIELD_HINT = "Class field (names or codes)"
MISSING_LABELS = (
    "Choose a layer of training polygons or points and its class field, or add your classes and draw "
    "their polygons on the map."
)
# The S2 encoder the runtime fits on when no model is named (models/own_classes.py: EXTRACTORS): its card
# says which bands the Sentinel-2 layer must have.
S2_ENCODER = WEIGHTS_DIR / "encoder_s2_multimodal.onnx"
TRAINED_ON = re.compile(r"(?:fitted|trained|fine-tuned) on the labels of ([\w\-]+(?:, [\w\-]+)*)", re.I)


def _count(number: int, word: str) -> str:
    return f"{number} {word}" + ("" if number == 1 else "s")


def trained_sites_line(card: Any) -> str | None:
    """One line on how many labelled sites trained a fixed-class model and its score on sites it never saw,
    read from its card (metrics.unseen_sites; the sites named in its split or description); None without."""
    unseen = card.metrics.get("unseen_sites") if isinstance(card.metrics, dict) else None
    if not isinstance(unseen, dict) or not isinstance(unseen.get("pooled_miou"), int | float):
        return None
    split = str(unseen.get("split", ""))
    trained = TRAINED_ON.search(split) or TRAINED_ON.search(card.description or "")
    held = re.match(r"[^(]*\(([^)]*)\)", split)
    if trained is None or held is None:
        return None
    n_trained = len(trained.group(1).split(", "))
    n_held = len([s for s in held.group(1).split(",") if s.strip()])
    line = (
        f"{card.name} learned its fixed classes from {_count(n_trained, 'labelled site')}; on the "
        f"{_count(n_held, 'site')} it never saw it scores a pooled mIoU of {unseen['pooled_miou']:.2f}"
    )
    majority = (unseen.get("pooled_miou_all_methods") or {}).get("aoi_majority")
    if isinstance(majority, int | float):
        line += f" (painting each site with its own most common class: {majority:.2f})"
    return line + "."


def classifier_path(out_dir: Path, models_dir: Path, stem: str) -> Path:
    """`<out_dir>/<stem>_classes.onnx`, numbered until the name is free in the output folder and in the
    user's models folder, so the saved classifier keeps its name (and its card's) when it is kept."""
    n = 1
    while True:
        candidate = unique_output_path(out_dir, stem if n == 1 else f"{stem}_{n}", ".onnx", kind="classes")
        if not (models_dir / candidate.name).exists():
            return candidate
        n += 1


def keep_classifier(path: Path) -> Path:
    """Copy a fitted classifier into the user's models folder (every model list shows that folder)."""
    folder = engine_env.user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 2
    while target.exists():
        target = folder / f"{path.stem}_{n}{path.suffix}"
        n += 1
    shutil.copyfile(path, target)
    return target


class LandCoverPanel(JobPanel):
    """The land-cover job in the analyst's classes (default) or in a bundled model's fixed classes."""

    def __init__(self, iface: QgisInterface, kind: JobKind, parent: QWidget | None = None) -> None:
        self._own = True  # read by input_card() while the base class builds the band mapping
        super().__init__(kind, parent)
        canvas = iface.mapCanvas()
        # short texts: a radio button does not wrap, and a wide one scrolls the whole dock sideways
        self.own = QRadioButton("My classes", self)
        self.own.setToolTip("A map in your own classes, learned from polygons or points you label")
        self.own.setObjectName("ContrasatOwnClasses")
        self.fixed = QRadioButton("A bundled model's fixed classes", self)
        self.fixed_note = QLabel(self)
        self.fixed_note.setObjectName("ContrasatFixedModelNote")
        self.fixed_note.setWordWrap(True)
        self.fixed_note.setText(self._default_model_line())
        self.drawer = LabelDrawer(canvas, self, name=SCRATCH_NAME, colours={}, colour_field=True)
        self.labels = LabelsBox(canvas, "My classes", FIELD_HINT, self.drawer, self, editable=True)
        self.own_hint = QLabel(
            "A classifier is fitted on the pre-trained encoders' features of your labelled pixels and maps "
            "every pixel (or the area of interest); polygons held back in turn give its accuracy.",
            self,
        )
        self.own_hint.setWordWrap(True)

        layout: QVBoxLayout = self.layout()
        for i, widget in enumerate((self.own, self.fixed, self.fixed_note)):
            layout.insertWidget(i, widget)
        at = layout.indexOf(self.inputs_box) + 1
        layout.insertWidget(at, self.labels)
        layout.insertWidget(at + 1, self.own_hint)
        self.own.setChecked(True)
        self.own.toggled.connect(self._on_mode)
        self._on_mode()

    def _default_model_line(self) -> str:
        try:
            card = read_card(WEIGHTS_DIR / f"{DEFAULTS['land_cover']}.onnx")
        except (KeyError, ModelError):
            return ""
        return trained_sites_line(card) or ""

    def _on_mode(self, *_args: Any) -> None:
        self._own = self.own.isChecked()
        self.labels.setVisible(self._own)
        self.own_hint.setVisible(self._own)
        self.model_box.setVisible(not self._own)
        self.refresh()

    def use_own_classes(self, on: bool) -> None:
        (self.own if on else self.fixed).setChecked(True)

    def input_card(self) -> Any:
        if not getattr(self, "_own", False):
            return super().input_card()
        try:
            return read_card(S2_ENCODER)
        except ModelError:
            return None

    def collect(self, out_dir: Path, aoi: Any, settings: RunSettings | None) -> JobRequest:
        """With My classes: the labels (as a GeoJSON document), their field and the classifier to write."""
        if not self._own:
            return super().collect(out_dir, aoi, settings)
        card = self.input_card()
        if card is None:
            raise ValueError("The bundled Sentinel-2 encoder is missing: reinstall the plugin.")
        paths, overrides = self.collect_inputs(card)
        doc, field_name = self.labels.document(MISSING_LABELS, "class names or codes")
        check_tiling(settings, card, self.kind.job)
        name = self.layer_combos["primary"].currentLayer().name()
        out = unique_output_path(out_dir, name, kind=self.kind.kind)
        options = self.map_options(out, paths, aoi)
        classifier = classifier_path(out_dir, engine_env.user_models_dir(), name)
        options.update(labels=doc, field=field_name, save_model=classifier)
        title = f"{name}, my classes"  # the map's layer: "Land cover (S2, my classes)"
        return JobRequest(self.kind.job, paths["primary"], out, options, title, settings, overrides)

    def cleanup(self) -> None:
        super().cleanup()
        self.labels.cleanup()
