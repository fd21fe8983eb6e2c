"""The Contrasat dock: the jobs side by side in tabs, a shared AOI, output folder, progress and area summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qgis.gui import QgisInterface, QgsDockWidget, QgsFileWidget
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .aoi_widget import AoiWidget
from .job_panel import JobPanel, job_kinds
from .paths import default_output_dir
from .results import area_rows
from .series_panel import SeriesPanel, series_available
from .settings import load_settings, save_settings
from .tasks import JobRequest, JobTask


def tr(text: str) -> str:
    """Translate in the dock's context."""
    return QCoreApplication.translate("ContrasatDock", text)


class ContrasatDock(QgsDockWidget):
    """Collects a job from the current tab and hands it to `start_job`; shows progress and the result."""

    def __init__(
        self,
        iface: QgisInterface,
        start_job: Callable[[JobRequest], JobTask | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tr("Contrasat"), parent)
        self.setObjectName("ContrasatDock")  # lets QGIS restore the dock's place between sessions
        self.iface = iface
        self.start_job = start_job
        self.task: JobTask | None = None

        body = QWidget(self)
        self.tabs = QTabWidget(body)
        kinds = job_kinds()
        self.panels: dict[str, Any] = {
            "map_floods": JobPanel(kinds["map_floods"], self.tabs),
            "land_cover": JobPanel(kinds["land_cover"], self.tabs),
        }
        self.tabs.addTab(self.panels["map_floods"], kinds["map_floods"].title)
        self.tabs.addTab(self.panels["land_cover"], kinds["land_cover"].title)
        if series_available():
            self.panels["classify_series"] = SeriesPanel(self.tabs)
            self.tabs.addTab(self.panels["classify_series"], tr("Time series"))
        for panel in self.panels.values():
            panel.runRequested.connect(self.run_panel)

        aoi_box = QGroupBox(tr("Area of interest"), body)
        self.aoi = AoiWidget(iface, aoi_box)
        QVBoxLayout(aoi_box).addWidget(self.aoi)

        self.output_dir = QgsFileWidget(body)
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setDialogTitle(tr("Output folder"))
        self.output_dir.setFilePath(load_settings().output_dir or str(default_output_dir()))
        self.output_dir.fileChanged.connect(self._remember_output_dir)

        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.cancel_button = QPushButton(tr("Cancel"), body)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.message = QLabel(body)
        self.message.setWordWrap(True)

        self.summary = QTableWidget(0, 3, body)
        self.summary.setHorizontalHeaderLabels([tr("Class"), tr("Area (km²)"), tr("Share")])
        self.summary.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.summary.verticalHeader().setVisible(False)
        self.summary.setMaximumHeight(160)
        self.csv_label = QLabel(body)
        self.csv_label.setWordWrap(True)

        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(body)
        layout.addWidget(self.tabs)
        layout.addWidget(aoi_box)
        layout.addWidget(QLabel(tr("Output folder"), body))
        layout.addWidget(self.output_dir)
        layout.addLayout(progress_row)
        layout.addWidget(self.message)
        layout.addWidget(QLabel(tr("Area per class"), body))
        layout.addWidget(self.summary)
        layout.addWidget(self.csv_label)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(body)
        self.setWidget(self.scroll)
        self.setMinimumWidth(420)  # narrower, the layer combos and band rows become unreadable

    def _remember_output_dir(self, path: str) -> None:
        settings = load_settings()
        settings.output_dir = path
        save_settings(settings)

    def output_folder(self) -> Path:
        text = self.output_dir.filePath().strip()
        return Path(text).expanduser().absolute() if text else default_output_dir()

    def run_panel(self, panel: Any) -> JobTask | None:
        """Start the job of `panel` with the shared AOI, folder and settings; None when it cannot start."""
        if self.task is not None:
            self.message.setText(tr("A job is already running: wait for it or cancel it."))
            return None
        try:
            request = panel.collect(self.output_folder(), self.aoi.aoi(), load_settings())
        except ValueError as exc:
            self.message.setText(str(exc))
            return None
        task = self.start_job(request)
        if task is None:
            return None
        self.task = task
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.message.setText(tr("Running: {}").format(task.description()))
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def job_finished(self, task: JobTask) -> None:
        """Called by the plugin on the GUI thread once a task started from anywhere has ended."""
        if task is self.task:
            self.task = None
            self.cancel_button.setEnabled(False)
        outcome = task.outcome
        if outcome.succeeded:
            self.progress.setValue(100)
            self.show_result(outcome.result)
            self.message.setText(tr("Done: {}").format(outcome.result.output))
        elif outcome.cancelled:
            self.progress.setValue(0)
            self.message.setText(tr("Cancelled; nothing was written."))
        else:
            self.message.setText(outcome.error or tr("the job failed"))

    def show_result(self, result: Any) -> None:
        """Fill the area table and say where the CSV is."""
        rows = area_rows(result)
        self.summary.setRowCount(len(rows))
        for i, row in enumerate(rows):
            self.summary.setItem(i, 0, QTableWidgetItem(row.name))
            self.summary.setItem(i, 1, QTableWidgetItem(f"{row.area_km2:.3f}"))
            self.summary.setItem(i, 2, QTableWidgetItem(f"{100 * row.share:.1f} %"))
        csv_path = result.statistics
        self.csv_label.setText(tr("Saved as {}").format(csv_path) if csv_path else "")
        self.scroll.ensureWidgetVisible(self.csv_label)  # the answer is what the user waits for

    def cleanup(self) -> None:
        """Drop canvas items and project connections before the dock is deleted (plugin unload)."""
        self.aoi.cleanup()
        series = self.panels.get("classify_series")
        if series is not None:
            from qgis.core import QgsProject

            QgsProject.instance().layersAdded.disconnect(series.refresh_layers)
            QgsProject.instance().layersRemoved.disconnect(series.refresh_layers)
