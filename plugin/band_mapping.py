"""Band mapping: guess which raster band holds each band a model needs, and apply a manual override.

The runtime finds bands by description (or by the sensor's full band order). A manual override is applied
by handing it a GDAL VRT that lists the chosen bands in the model's order, named as the model expects:
no pixel is copied, and the runtime needs no extra argument.
"""

from __future__ import annotations

from pathlib import Path

from osgeo import gdal

from ..models.bands import SENSOR_BANDS, resolve_bands


def band_descriptions(path: str | Path) -> list[str]:
    """Band descriptions of a raster file ('' where a band has none); [] when GDAL cannot open it."""
    dataset = gdal.Open(str(path))
    if dataset is None:
        return []
    try:
        return [dataset.GetRasterBand(i).GetDescription() for i in range(1, dataset.RasterCount + 1)]
    finally:
        dataset = None  # closes the file (GDAL datasets close when released)


def guess_mapping(descriptions: list[str], sensor: str, wanted: list[str]) -> list[int] | None:
    """1-based band index per wanted band, as the runtime itself would pick them; None when unknown."""
    return resolve_bands(list(descriptions), SENSOR_BANDS.get(sensor, tuple(wanted)), wanted)


def build_band_vrt(source: str | Path, bands: list[int], names: list[str], folder: str | Path) -> Path:
    """A VRT in `folder` exposing `bands` of `source` in that order, described as `names`."""
    source = Path(source)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source.stem}_bands_{'_'.join(map(str, bands))}.vrt"
    options = gdal.BuildVRTOptions(bandList=list(bands))
    vrt = gdal.BuildVRT(str(target), [str(source)], options=options)
    if vrt is None:
        raise OSError(f"GDAL could not build a band VRT for {source.name}")
    try:
        for i, name in enumerate(names, start=1):
            # Descriptions are what the runtime matches on, so they must name the model's bands.
            vrt.GetRasterBand(i).SetDescription(name)
    finally:
        vrt = None  # flushes the VRT XML to disk
    return target
