"""The skeleton every tiled job shares (map-floods, land-cover, classify-series).

A job opens and checks its inputs on one grid (rasters.py aligns them), then through this module: finds
the window it maps (the AOI's, or the whole grid), loads its model with the execution settings, opens the
class raster's temporary of the output set, runs block by block, refuses a model that answered NaN
everywhere or a map without a valid pixel, and returns its result; the output set commits the files.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .aoi import AOI, aoi_window, load_aoi
from .card import ModelCard
from .errors import InputError, ModelError
from .execution import Execution
from .notes import Note
from .notes import warning as note_warning
from .output_set import OutputSet, verify_raster
from .outputs import class_profile
from .rasters import Grid
from .session import LoadedModel, load_model

# tile sides are multiples of 16 (execution.py): a read window starting and ending on the raster's 16-pixel
# grid puts every tile there (the last one pulled back to end at the window's edge), so a network with
# strided layers sees the same pixel phase wherever an AOI falls
ALIGN = 16


@dataclass
class Extent:
    """What a job maps: the AOI geometry (None: the whole grid), its window of the grid and that window's
    transform and size (the output raster's grid); `read`: the window the network reads, the AOI's with
    the model's surroundings (`window` itself without an AOI or a context margin)."""

    geometry: dict[str, Any] | None
    window: Window
    transform: Any
    height: int
    width: int
    read: Window

    @property
    def output_in_read(self) -> Window:
        """The output's window inside `read`."""
        return Window(self.window.col_off - self.read.col_off, self.window.row_off - self.read.row_off,
                      self.width, self.height)  # fmt: skip

    def block_transform(self, block: Window) -> Any:
        """The transform of a block given in output pixels."""
        return window_transform(block, self.transform)


def extent(aoi: AOI, grid: Grid, notes: list[Note], margin: int = 0) -> Extent:
    """The AOI (in any CRS) as a window of the grid; the whole grid without an AOI. `margin`: the model
    card's context margin, read around the AOI where the raster has it."""
    geometry = load_aoi(aoi, grid.crs, notes)
    if geometry is not None:
        window = aoi_window(geometry, grid.transform, grid.width, grid.height)
    else:
        window = Window(0, 0, grid.width, grid.height)
    return Extent(
        geometry,
        window,
        window_transform(window, grid.transform),
        int(window.height),
        int(window.width),
        with_surroundings(window, grid, margin),
    )


def with_surroundings(window: Window, grid: Grid, margin: int) -> Window:
    """`window` grown by `margin` pixels on each side where the raster has them, its edges on the raster's
    ALIGN-pixel grid (or on the raster's edge, as the whole map's last tile): the network then sees around an
    AOI what it sees in the whole scene, and an AOI's pixels are classed as in the whole map
    (docs/architecture.md, "Areas of interest")."""
    if margin <= 0:
        return window
    col0 = max(int(window.col_off) - margin, 0) // ALIGN * ALIGN
    row0 = max(int(window.row_off) - margin, 0) // ALIGN * ALIGN
    # the far edges on the grid too: a read wider than a tile pulls its last tile back to end there
    col1 = min(-(-(int(window.col_off + window.width) + margin) // ALIGN) * ALIGN, grid.width)
    row1 = min(-(-(int(window.row_off + window.height) + margin) // ALIGN) * ALIGN, grid.height)
    return Window(col0, row0, col1 - col0, row1 - row0)


def load(model_path: Path, config: Execution) -> LoadedModel:
    """The model on the execution provider asked for ('cuda' where CUDA cannot run: InputError)."""
    return load_model(
        model_path, provider=config.provider, threads=config.ort_threads, device_id=config.device_id
    )


def open_class_raster(files: ExitStack, outputs: OutputSet, grid: Grid, where: Extent, card: ModelCard):
    """The class raster's temporary (the output set's first output), open for writing block by block."""
    import rasterio

    class_out = outputs.outputs[0]
    class_out.verify = verify_raster(where.width, where.height, 1)
    profile = class_profile(grid.crs, where.transform, where.width, where.height, card.output_nodata)
    return files.enter_context(rasterio.open(class_out.temp, "w", **profile))


@dataclass
class Answers:
    """What a job counted while mapping: pixels with input, pixels the model answered NaN for, and the
    valid output pixels (any positive number: an area or a count)."""

    input_pixels: int = 0
    nan_pixels: int = 0
    valid: float = 0.0

    def check(self, card: ModelCard, notes: list[Note], nothing_valid: str, share: bool = True) -> None:
        """A model answering NaN everywhere is refused, elsewhere noted; a map without a valid pixel is
        refused with `nothing_valid`. `share`: say which share of the pixels was NaN."""
        if self.nan_pixels and self.nan_pixels == self.input_pixels:
            raise ModelError(f"model {card.name} answered NaN for every pixel: it cannot map this input")
        if self.nan_pixels and self.valid > 0:
            part = f" ({100.0 * self.nan_pixels / max(self.input_pixels, 1):.2g} %)" if share else ""
            notes.append(note_warning(f"model {card.name} answered NaN for {self.nan_pixels} pixels{part}: "
                                      "left as nodata"))  # fmt: skip
        if self.valid <= 0:
            raise InputError(nothing_valid)
