"""One row per band a model needs: the band index guessed from descriptions, changeable by the user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QLabel, QWidget

from .band_mapping import band_descriptions, guess_mapping
from .tasks import BandOverride


class BandMappingWidget(QWidget):
    """Shows `spec.bands` of a model input against the bands of one raster file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(12, 0, 0, 0)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.combos: list[QComboBox] = []
        self.source: Path | None = None
        self.wanted: list[str] = []
        self.guessed: list[int] | None = None
        self.form.addRow(self.status)

    def set_input(self, source: Path | None, spec: Any) -> None:
        """Rebuild for raster `source` and card input `spec` (None for either hides the mapping)."""
        while self.form.rowCount() > 1:
            self.form.removeRow(1)
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
            combo = QComboBox(self)
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
