"""Model picker: the bundled models of one task (or an .onnx file) and the chosen model's card."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..models.errors import ModelError
from . import engine_env
from .card_metrics import metric_lines
from .cards import DEFAULTS, bundled_cards, cards_in, read_card


def _swatch(color: str) -> str:
    """CSS colour of a class swatch; a fully transparent class (e.g. flood 'dry') shows as white."""
    digits = color.lstrip("#")
    if len(digits) == 8 and digits[6:].lower() == "00":
        return "#ffffff"
    return "#" + "".join(ch for ch in digits[:6] if ch in "0123456789abcdefABCDEF")


def card_html(card: Any) -> str:
    """The card as a user reads it: inputs (sensor, bands, units), classes with colours, metrics."""
    esc = html.escape
    parts = [f"<b>{esc(card.name)}</b> — {esc(card.task)}"]
    if card.description:
        parts.append(f"<br>{esc(card.description)}")
    inputs = "".join(
        f"<li>{esc(i.sensor)}: {esc(', '.join(i.bands))} ({esc(i.units)})</li>" for i in card.inputs
    )
    parts.append(f"<br><u>{esc('Inputs')}</u><ul>{inputs}</ul>")
    classes = "".join(
        f"<li><span style='background:{_swatch(c.color)}'>&nbsp;&nbsp;&nbsp;</span> {c.value}: {esc(c.name)}</li>"
        for c in card.classes
    )
    parts.append(f"<u>{esc('Classes')}</u><ul>{classes}</ul>")
    if card.metrics:
        metrics = "".join(f"<li>{esc(line)}</li>" for line in metric_lines(card.metrics))
        parts.append(f"<u>{esc('Metrics')}</u><ul>{metrics}</ul>")
    margin = getattr(card, "context_margin", 0)
    around = f", reads {margin} px around an area of interest" if margin else ""
    parts.append(esc(f"Tile {card.tile_size} px, overlap {card.overlap} px{around}, licence {card.license}"))
    return "".join(parts)


class ModelPicker(QWidget):
    """A combo of the bundled models for `task`, the user's own (fine-tuned) models and files the user
    browsed to; shows the selected card. `accept(card)` narrows the list (e.g. models that can be fine-tuned)."""

    modelChanged = pyqtSignal()  # noqa: N815 - Qt signal naming

    def __init__(
        self, task: str, parent: QWidget | None = None, accept: Callable[[Any], bool] | None = None
    ) -> None:
        super().__init__(parent)
        self.task = task
        self.accept = accept
        self._cards: dict[str, Any] = {}  # path -> card
        self._browsed: list[str] = []  # files added with Browse…, kept across reloads
        self.combo = QComboBox(self)
        self.combo.setToolTip("Bundled models for this job; Browse adds an .onnx file with a Contrasat card")
        self.browse = QPushButton("Browse…", self)
        self.card_view = QTextBrowser(self)
        self.card_view.setMaximumHeight(140)
        self.card_view.setOpenExternalLinks(True)
        row = QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.card_view)
        self.combo.currentIndexChanged.connect(self._on_changed)
        self.browse.clicked.connect(self._browse)
        self.reload()

    def _fits(self, card: Any) -> bool:
        return card.task == self.task and (self.accept is None or self.accept(card))

    def reload(self) -> None:
        """List the bundled models of this task, then the user's own (cards read from the ONNX metadata,
        without onnx), then browsed files; the current choice is kept when it is still listed."""
        current = self.combo.currentData()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.card_view.clear()
        models = [(p, c) for p, c in bundled_cards() if self._fits(c)]
        default = DEFAULTS.get(self.task)
        for path, card in sorted(models, key=lambda pc: pc[0].stem != default):  # default model first
            self._cards[str(path)] = card
            self.combo.addItem(card.name, str(path))
        for path, card in cards_in(engine_env.user_models_dir()):
            if self._fits(card):
                self._cards[str(path)] = card
                self.combo.addItem(f"{card.name} (your model)", str(path))
        for key in self._browsed:
            if key in self._cards and self.combo.findData(key) < 0:
                self.combo.addItem(f"{self._cards[key].name} ({Path(key).name})", key)
        if current is not None and self.combo.findData(current) >= 0:
            self.combo.setCurrentIndex(self.combo.findData(current))
        self.combo.blockSignals(False)
        self._on_changed()

    def set_model_path(self, path: str | Path) -> bool:
        """Select an .onnx file (added to the list when new); False with the reason shown when unreadable."""
        key = str(Path(path))
        if key not in self._cards:
            try:
                card = read_card(key)
            except ModelError as exc:
                self.card_view.setPlainText(str(exc))
                return False
            if card.task != self.task:
                self.card_view.setPlainText(
                    f"{card.name} is a '{card.task}' model; this job needs a '{self.task}' model"
                )
                return False
            self._cards[key] = card
        card = self._cards[key]
        if self.accept is not None and not self.accept(card):
            self.card_view.setPlainText(f"{card.name} cannot be used here")
            return False
        if self.combo.findData(key) < 0:
            self._browsed.append(key)
            self.combo.addItem(f"{card.name} ({Path(key).name})", key)
        self.combo.setCurrentIndex(self.combo.findData(key))
        self._on_changed()
        return True

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", "", "ONNX models (*.onnx)")
        if path:
            self.set_model_path(path)

    def model_path(self) -> Path | None:
        data = self.combo.currentData()
        return Path(data) if data else None

    def card(self) -> Any:
        """The selected model's card, or None when no model is available."""
        data = self.combo.currentData()
        return self._cards.get(data) if data else None

    def _on_changed(self, *_args: Any) -> None:
        card = self.card()
        if card is not None:
            self.card_view.setHtml(card_html(card))
        elif self.combo.count() == 0 and not self.card_view.toPlainText():
            self.card_view.setPlainText(f"No bundled '{self.task}' model yet: Browse to an .onnx file.")
        self.modelChanged.emit()
