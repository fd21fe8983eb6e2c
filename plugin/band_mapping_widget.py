"""One row per band a model needs: the band index guessed from descriptions, changeable by the user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from .band_mapping import band_descriptions, guess_mapping
from .launcher import BandOverride


class BandMappingWidget(QWidget):
    """Shows `spec.bands` of a model input against the bands of one raster file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 0, 0, 0)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        # Bands found from their descriptions stay folded (13 rows for S2 would push everything down).
        self.change_button = QToolButton(self)
        self.change_button.setText("Change…")
        self.change_button.setCheckable(True)
        self.change_button.toggled.connect(self._update_status)
        head = QHBoxLayout()
        head.addWidget(self.status, 1)
        head.addWidget(self.change_button)
        outer.addLayout(head)
        self.rows = QWidget(self)
        self.form = QFormLayout(self.rows)
        self.form.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.rows)
        self.combos: list[QComboBox] = []
        self.source: Path | None = None
        self.wanted: list[str] = []
        self.guessed: list[int] | None = None

    def set_input(self, source: Path | None, spec: Any) -> None:
        """Rebuild for raster `source` and card input `spec` (None for either hides the mapping)."""
        while self.form.rowCount() > 0:
            self.form.removeRow(0)
        self.combos = []
        self.source = source
        self.wanted = list(spec.bands) if spec is not None else []
        self.guessed = None
        if source is None or spec is None:
            self.status.setText("")
            self.setVisible(False)
            return
        self.setVisible(True)
        descriptions = band_descriptions(source)
        self.guessed = guess_mapping(descriptions, spec.sensor, self.wanted)
        for i, band in enumerate(self.wanted):
            combo = QComboBox(self.rows)
            combo.addItem("— choose —", 0)
            for index, text in enumerate(descriptions, start=1):
                combo.addItem(f"{index}: {text}" if text else f"{index}: (no description)", index)
            if self.guessed is not None:
                combo.setCurrentIndex(self.guessed[i])
            combo.currentIndexChanged.connect(self._update_status)
            self.form.addRow(f"{band} band", combo)
            self.combos.append(combo)
        self._update_status()

    def mapping(self) -> list[int] | None:
        """Chosen 1-based band index per wanted band, or None while one is unset."""
        chosen = [int(c.currentData()) for c in self.combos]
        return chosen if chosen and all(chosen) else None

    def is_overridden(self) -> bool:
        mapping = self.mapping()
        return mapping is not None and mapping != self.guessed

    def override(self) -> BandOverride | None:
        """The manual choice as a BandOverride, or None when the guessed mapping is used as is."""
        if self.source is None or not self.is_overridden():
            return None
        return BandOverride(self.source, self.mapping() or [], list(self.wanted))

    def _update_status(self, *_args: Any) -> None:
        if self.mapping() is None:
            text = "Band descriptions do not name {}: choose the bands.".format("/".join(self.wanted))
        elif self.is_overridden():
            text = "Manual band mapping."
        else:
            text = "Bands found from their descriptions."
        self.status.setText(text)
        folded = (
            self.mapping() is not None and not self.is_overridden() and not self.change_button.isChecked()
        )
        self.rows.setVisible(not folded)
        self.change_button.setVisible(self.mapping() is not None and not self.is_overridden())
