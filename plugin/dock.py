"""The Contrasat dock: run controls on top, the jobs in tabs, a shared AOI and output folder, the areas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qgis.core import QgsProject
from qgis.gui import QgisInterface, QgsDockWidget, QgsFileWidget
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
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
from .engine_env import EngineStatus
from .engine_install import InstallTask, install_events, running_install, start_install
from .finetune_job import FINETUNE_JOB, FINETUNE_TITLE, finetune_text
from .finetune_panel import FinetunePanel
from .job_panel import JobPanel, job_kinds
from .land_cover_panel import LandCoverPanel, keep_classifier
from .launcher import JobRequest, trains
from .paths import default_output_dir
from .results import JobSummary, accuracy_report, area_rows, total_row
from .series_panel import SeriesPanel
from .settings import load_settings, save_settings
from .tasks import JobTask

MODEL_TABS = {"flood": "map_floods", "land_cover": "land_cover"}  # the tab a new model of a task is chosen in


class ContrasatDock(QgsDockWidget):
    """Collects a job from the current tab and hands it to `start_job`; shows progress and the result."""

    installRequested = pyqtSignal()  # noqa: N815 - Qt signal naming

    def __init__(
        self,
        iface: QgisInterface,
        start_job: Callable[[JobRequest], JobTask | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Contrasat", parent)
        self.setObjectName("ContrasatDock")  # lets QGIS restore the dock's place between sessions
        self.iface = iface
        self.start_job = start_job
        self.task: JobTask | None = None
        self.engine_ok: bool | None = None  # None until the first check has answered
        self.installing: InstallTask | None = None
        self.failed_install: InstallTask | None = None  # offered again by Retry

        body = QWidget(self)
        # The engine banner: shown until the engine passed its check, with the installer's progress.
        self.engine_banner = QWidget(body)
        self.engine_banner.setObjectName("ContrasatEngineBanner")
        self.engine_label = QLabel("Checking the Contrasat engine…", self.engine_banner)
        self.engine_label.setWordWrap(True)
        self.engine_label.setObjectName("ContrasatEngineLabel")
        self.install_button = QPushButton("Install…", self.engine_banner)
        self.install_button.setObjectName("ContrasatInstall")
        self.install_button.clicked.connect(self._install_clicked)
        self.install_progress = QProgressBar(self.engine_banner)
        self.install_progress.setRange(0, 100)
        self.install_progress.setVisible(False)
        banner = QVBoxLayout(self.engine_banner)
        banner.setContentsMargins(0, 0, 0, 0)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.engine_label, 1)
        banner_row.addWidget(self.install_button)
        banner.addLayout(banner_row)
        banner.addWidget(self.install_progress)

        # Run controls first: they must never be below the fold.
        self.run_button = QPushButton(body)
        self.run_button.setObjectName("ContrasatRun")
        self.run_button.clicked.connect(lambda: self.run_panel(self.tabs.currentWidget()))
        self.cancel_button = QPushButton("Cancel", body)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.message = QLabel(body)
        self.message.setWordWrap(True)
        self.message.setObjectName("ContrasatMessage")

        self.tabs = QTabWidget(body)
        kinds = job_kinds()
        self.panels: dict[str, Any] = {
            "map_floods": JobPanel(kinds["map_floods"], self.tabs),
            "land_cover": LandCoverPanel(iface, kinds["land_cover"], self.tabs),
            "classify_series": SeriesPanel(self.tabs),
            FINETUNE_JOB: FinetunePanel(iface, self.tabs),
        }
        self.tabs.addTab(self.panels["map_floods"], kinds["map_floods"].title)
        self.tabs.addTab(self.panels["land_cover"], kinds["land_cover"].title)
        self.tabs.addTab(self.panels["classify_series"], "Time series")
        self.tabs.addTab(self.panels[FINETUNE_JOB], FINETUNE_TITLE)
        self.tabs.currentChanged.connect(self._update_run_text)
        self.tabs.currentChanged.connect(self._tab_changed)
        for panel in self.panels.values():
            panel.runRequested.connect(self.run_panel)

        aoi_box = QGroupBox("Area of interest", body)
        self.aoi = AoiWidget(iface, aoi_box)
        QVBoxLayout(aoi_box).addWidget(self.aoi)

        self.output_dir = QgsFileWidget(body)
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setDialogTitle("Output folder")
        self.output_dir.setFilePath(load_settings().output_dir or str(default_output_dir()))
        self.output_dir.fileChanged.connect(self._remember_output_dir)

        self.summary = QTableWidget(0, 3, body)
        self.summary.setObjectName("ContrasatAreas")
        self.summary.setHorizontalHeaderLabels(["Class", "Area (km²)", "Share"])
        header = self.summary.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Stretch)  # class names are never clipped
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.summary.verticalHeader().setVisible(False)
        self.summary.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.summary.setWordWrap(True)
        self.csv_label = QLabel(body)
        self.csv_label.setWordWrap(True)
        # a map in the user's own classes: the classifier's accuracy, and keeping the classifier
        self.accuracy = QLabel(body)
        self.accuracy.setObjectName("ContrasatAccuracy")
        self.accuracy.setWordWrap(True)
        self.accuracy.setTextFormat(Qt.RichText)
        self.save_classifier_button = QPushButton("Save classifier", body)
        self.save_classifier_button.setObjectName("ContrasatSaveClassifier")
        self.save_classifier_button.setToolTip(
            "Keep the fitted classifier in your models folder: every land-cover model list offers it, to map "
            "other scenes in the same classes"
        )
        self.save_classifier_button.clicked.connect(self.save_classifier)
        self.classifier: Path | None = None
        # The answer the user waits for sits right under the run controls, shown once there is one.
        self.result_box = QGroupBox("Area per class", body)
        result_layout = QVBoxLayout(self.result_box)
        result_layout.addWidget(self.summary)
        result_layout.addWidget(self.csv_label)
        result_layout.addWidget(self.accuracy)
        result_layout.addWidget(self.save_classifier_button)
        self.result_box.setVisible(False)

        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(body)
        layout.addWidget(self.engine_banner)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.result_box)
        layout.addWidget(self.tabs)
        layout.addWidget(aoi_box)
        layout.addWidget(QLabel("Output folder", body))
        layout.addWidget(self.output_dir)
        layout.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(body)
        self.setWidget(self.scroll)
        self.setMinimumWidth(420)  # narrower, the layer combos and band rows become unreadable
        self._update_run_text()
        events = install_events()
        events.started.connect(self.install_started)
        events.progress.connect(self._install_progress)
        events.finished.connect(self.install_finished)
        if running_install() is not None:
            self.install_started(running_install())

    def _update_run_text(self, *_args: Any) -> None:
        panel = self.tabs.currentWidget()
        self.run_button.setText(f"Run: {getattr(panel, 'title', 'job')}")

    def _tab_changed(self, *_args: Any) -> None:
        """A new tab starts with no word from the last run ("Cancelled.", an error); a running job keeps its
        "Running: …"."""
        if self.task is None:
            self.message.setText("")
        check_training = getattr(self.tabs.currentWidget(), "check_training", None)
        if check_training is not None:  # the Fine-tune tab: does the engine have torch?
            check_training()

    def set_engine_status(self, status: EngineStatus) -> None:
        """Hide the banner once the engine works; otherwise say why (each failing piece) and offer the installer."""
        if self.installing is not None:
            return  # the running installation's outcome decides
        self.engine_ok = status.ok
        self.engine_banner.setVisible(not status.ok)
        failed = [f"{p.get('name')}: {p.get('detail')}" for p in status.failed()]
        first = status.message.splitlines()[0].rstrip(":") if status.message else ""
        text = first + (" (" + "; ".join(failed[:3]) + ")" if failed else "")
        self.engine_label.setText("" if status.ok else f"{text}. Jobs need the engine.")
        self.install_button.setText("Install…")
        self.install_button.setEnabled(True)
        self._update_run_enabled()

    def install_started(self, task: InstallTask) -> None:
        """An installation runs: say so with its progress; Run and Install wait for it."""
        self.installing = task
        self.failed_install = None
        self.engine_banner.setVisible(True)
        self.engine_label.setText("Installing the engine… (QGIS stays usable; the log is in the installer)")
        self.install_progress.setValue(0)
        self.install_progress.setVisible(True)
        self.install_button.setEnabled(False)
        self._update_run_enabled()

    def _install_progress(self, value: float) -> None:
        self.install_progress.setValue(int(value))

    def install_finished(self, task: InstallTask) -> None:
        """The installation ended: ready, or what failed with a Retry."""
        self.installing = None
        self.install_progress.setVisible(False)
        if not task.error and task.status is not None and task.status.ok:
            self.set_engine_status(task.status)
            return
        self.engine_ok = False
        self.failed_install = task
        reason = (task.error or "cancelled").splitlines()
        self.engine_label.setText(f"The engine was not installed: {' '.join(r.strip() for r in reason[:4])}")
        self.install_button.setText("Retry")
        self.install_button.setEnabled(True)
        self._update_run_enabled()

    def _install_clicked(self) -> None:
        """Install… opens the installer; after a failure, Retry runs the same installation again."""
        failed = self.failed_install
        if failed is not None and start_install(failed.wheelhouse, failed.plans) is not None:
            return
        self.installRequested.emit()

    def _update_run_enabled(self) -> None:
        """Run waits for a running job, a running installation, and an engine known to be broken."""
        self.run_button.setEnabled(
            self.task is None and self.installing is None and self.engine_ok is not False
        )

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
            self.message.setText("A job is already running: wait for it or cancel it.")
            return None
        if self.installing is not None:
            self.message.setText("The engine is being installed: jobs can run once it is ready.")
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
        self.clear_result()
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.run_button.setEnabled(False)
        self.message.setText(f"Running: {task.description()}")
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def clear_result(self) -> None:
        """Forget the previous run's areas (a new run or a cancelled one must not show stale figures)."""
        self.summary.setRowCount(0)
        self.csv_label.setText("")
        self.accuracy.setText("")
        self.accuracy.setVisible(False)
        self.classifier = None
        self.save_classifier_button.setVisible(False)
        self.result_box.setVisible(False)

    def job_finished(self, task: JobTask, summary: JobSummary | None = None) -> None:
        """Called by the plugin on the GUI thread once a task started from anywhere has ended."""
        if task is self.task:
            self.task = None
            self.cancel_button.setEnabled(False)
            self._update_run_enabled()
        outcome = task.outcome
        if outcome.succeeded and trains(task.request.job):
            self.progress.setValue(100)
            self.clear_result()
            self.message.setText(finetune_text(outcome.result or {}))
        elif outcome.succeeded and summary is not None:
            self.progress.setValue(100)
            self.show_result(summary)
            self.message.setText(f"Done: {summary.output}")
        elif outcome.cancelled:
            self.progress.setValue(0)
            self.clear_result()
            self.message.setText("Cancelled.")
        else:
            self.progress.setValue(0)
            self.clear_result()
            self.message.setText(outcome.error or "the job failed")

    def model_added(self, path: Path, task: str = "flood") -> None:
        """List a new model of the user's in every picker; the job tab of its task (Map floods for a flood
        model, Land cover for a classifier) selects it."""
        for panel in self.panels.values():
            panel.model_picker.reload()
        self.panels[MODEL_TABS[task]].model_picker.set_model_path(path)

    def save_classifier(self) -> Path | None:
        """Copy the last run's fitted classifier into the user's models folder; it joins every model list."""
        if self.classifier is None or not self.classifier.is_file():
            self.message.setText("There is no fitted classifier to save: run Land cover with your classes.")
            return None
        try:
            kept = keep_classifier(self.classifier)
        except OSError as exc:
            self.message.setText(f"Cannot save the classifier into your models folder: {exc.strerror}.")
            return None
        self.model_added(kept, "land_cover")
        self.save_classifier_button.setEnabled(False)
        self.message.setText(
            f"Classifier saved as '{kept.stem}' in your models folder ({kept.parent}): every land-cover "
            "model list offers it."
        )
        return kept

    def show_result(self, result: JobSummary) -> None:
        """Fill the area table (classes with an area, no "no data", then a total) and say where the CSV is."""
        rows = area_rows(result, only_mapped=True)
        if rows:
            rows.append(total_row(rows))
        self.summary.setRowCount(len(rows))
        bold = self.summary.font()
        bold.setBold(True)
        for i, row in enumerate(rows):
            items = [
                QTableWidgetItem(row.name),
                QTableWidgetItem(f"{row.area_km2:.3f}"),
                QTableWidgetItem(f"{100 * row.share:.1f} %"),
            ]
            for column, item in enumerate(items):
                if row.value < 0:  # the total
                    item.setFont(bold)
                self.summary.setItem(i, column, item)
        self.summary.resizeRowsToContents()
        height = self.summary.horizontalHeader().height() + 4
        height += sum(self.summary.rowHeight(i) for i in range(len(rows)))
        self.summary.setFixedHeight(min(height + 2, 400))  # every class visible, no empty rows below
        csv_path = result.statistics
        self.csv_label.setText(f"Saved as {csv_path}" if csv_path else "")
        report = accuracy_report(result)
        self.accuracy.setText(report)
        self.accuracy.setVisible(bool(report))
        self.classifier = result.classifier
        self.save_classifier_button.setVisible(result.classifier is not None)
        self.save_classifier_button.setEnabled(result.classifier is not None)
        self.result_box.setVisible(True)
        self.scroll.ensureWidgetVisible(self.result_box)

    def cleanup(self) -> None:
        """Drop canvas items and project connections before the dock is deleted (plugin unload)."""
        events = install_events()
        events.started.disconnect(self.install_started)
        events.progress.disconnect(self._install_progress)
        events.finished.disconnect(self.install_finished)
        self.aoi.cleanup()
        series = self.panels["classify_series"]
        QgsProject.instance().layersAdded.disconnect(series.refresh_layers)
        QgsProject.instance().layersRemoved.disconnect(series.refresh_layers)
        for key in ("map_floods", "land_cover", FINETUNE_JOB):
            self.panels[key].cleanup()
