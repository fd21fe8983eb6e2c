"""Which layers the runtime can read, and where outputs go by default."""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import QgsMapLayer, QgsProject, QgsProviderRegistry, QgsRasterLayer
from qgis.PyQt.QtCore import QStandardPaths

OUTPUT_SUBDIR = "contrasat"
RASTER_SUFFIXES = (".tif", ".tiff")


def layer_file_path(layer: QgsMapLayer | None) -> Path | None:
    """The file behind a GDAL raster layer, or None when the runtime cannot open it by path.

    The runtime reads inputs with rasterio by file name, so layers from other providers (WMS, XYZ,
    PostGIS rasters...), GDAL sub-datasets and virtual paths are not offered.
    """
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid() or layer.providerType() != "gdal":
        return None
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    if parts.get("layerName") or parts.get("vsiPrefix"):
        return None
    path = Path(parts.get("path") or "")
    return path if path.is_file() else None


def default_output_dir(project: QgsProject | None = None) -> Path:
    """`contrasat/` next to the saved project file, else in the user's data folder.

    Not the system temp folder: QGIS warns about layers in temporary folders when a project is saved,
    and results must survive a restart (e.g. ~/.local/share/contrasat/outputs on Linux).
    """
    project = project or QgsProject.instance()
    home = project.absolutePath()
    if home:
        return Path(home) / OUTPUT_SUBDIR
    data = QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation) or str(Path.home())
    return Path(data) / OUTPUT_SUBDIR / "outputs"


# Outputs of jobs started and not yet ended: not on disk until the engine commits them, yet taken (a second
# run started meanwhile would otherwise get the same default name and replace the first result).
_IN_USE: set[Path] = set()


def reserve_output(path: Path) -> None:
    """Mark `path` as the output of a running job: default names skip it until `release_output`."""
    _IN_USE.add(Path(path).absolute())


def release_output(path: Path) -> None:
    """The job writing `path` has ended (done, failed or cancelled)."""
    _IN_USE.discard(Path(path).absolute())


def unique_output_path(folder: Path, stem: str, suffix: str = ".tif", kind: str = "flood") -> Path:
    """`folder/<stem>_<kind>.tif`, numbered `_2`, `_3`, ... so an earlier result, or the output of a job
    still running, is never overwritten."""
    safe = re.sub(r"[^\w.-]+", "_", stem).strip("._") or "layer"
    candidate = folder / f"{safe}_{kind}{suffix}"
    n = 2
    while candidate.exists() or candidate.absolute() in _IN_USE:
        candidate = folder / f"{safe}_{kind}_{n}{suffix}"
        n += 1
    return candidate


def sibling_outputs(out: Path) -> dict[str, Path]:
    """Names of the optional outputs that go with class raster `out` (same folder, same stem)."""
    return {
        "probabilities": out.with_name(f"{out.stem}_probabilities.tif"),
        "polygons": out.with_name(f"{out.stem}_polygons.gpkg"),
        "statistics": out.with_name(f"{out.stem}_areas.csv"),
    }


def normalise_output_path(text: str | Path) -> Path:
    """An absolute GeoTIFF path: `.tif` is appended when the user typed no raster extension."""
    path = Path(text).expanduser()
    if path.suffix.lower() not in RASTER_SUFFIXES:
        path = path.with_name(path.name + ".tif")
    return path.absolute()
