"""The Processing provider `contrasat`: registered by the plugin in QGIS and in qgis_process."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import algorithms

ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "contrasat.svg"


class ContrasatProvider(QgsProcessingProvider):
    """Provides `contrasat:<job>` for every job of the table (models/jobs.py)."""

    def id(self) -> str:
        return "contrasat"

    def name(self) -> str:
        return "Contrasat"

    def longName(self) -> str:  # noqa: N802
        return "Contrasat flood and land-cover mapping"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def loadAlgorithms(self) -> None:  # noqa: N802
        for algorithm in algorithms():
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["gpkg", "geojson"]  # the runtime writes single-file polygon formats only

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: N802, N803
        return "gpkg"

    def defaultRasterFileExtension(self) -> str:  # noqa: N802
        return "tif"
