"""`contrasat demo`: the jobs on the bundled real Sen1Floods11 sample, with PNG previews."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio

from .models.errors import InputError
from .models.outputs import hex_to_rgba
from .models.pipeline import JobResult, land_cover, map_floods
from .models.registry import bundled_models

SAMPLE_DIR = Path(__file__).resolve().parent / "resources" / "sample"
SAMPLE_S1 = SAMPLE_DIR / "Spain_7370579_S1Hand.tif"
SAMPLE_S2 = SAMPLE_DIR / "Spain_7370579_S2Hand.tif"
SAMPLE_LABEL = SAMPLE_DIR / "Spain_7370579_LabelHand.tif"


def _class_rgba(path: Path, result: JobResult) -> np.ndarray:
    with rasterio.open(path) as src:
        classes = src.read(1)
    rgba = np.zeros(classes.shape + (4,), dtype=np.float32)
    for c in result.classes:
        rgba[classes == c.value] = np.array(hex_to_rgba(c.color)) / 255.0
    return rgba


def _stretch(band: np.ndarray) -> np.ndarray:
    finite = band[np.isfinite(band)]
    lo, hi = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
    return np.clip((band - lo) / max(hi - lo, 1e-6), 0, 1)


def flood_preview(result: JobResult, png: Path) -> Path:
    """Side-by-side PNG: S1 VH backscatter, the flood map over it, and the hand label when bundled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with rasterio.open(SAMPLE_S1) as src:
        vh = src.read(2)
    panels = 3 if SAMPLE_LABEL.exists() else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.4))
    axes[0].imshow(_stretch(vh), cmap="gray")
    axes[0].set_title("Sentinel-1 VH (dB)")
    axes[1].imshow(_stretch(vh), cmap="gray")
    axes[1].imshow(_class_rgba(result.output, result))
    axes[1].set_title(f"{result.model_name}: {result.flooded_km2:.2f} km² water")
    if panels == 3:
        with rasterio.open(SAMPLE_LABEL) as src:
            label = src.read(1)
        water = np.zeros(label.shape + (4,), dtype=np.float32)
        water[label == 1] = np.array(hex_to_rgba(result.classes[-1].color)) / 255.0
        axes[2].imshow(_stretch(vh), cmap="gray")
        axes[2].imshow(water)
        axes[2].set_title("Sen1Floods11 hand label (water)")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle("Contrasat demo - Spain_7370579 (Sen1Floods11)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def land_cover_preview(result: JobResult, png: Path) -> Path:
    """Side-by-side PNG: Sentinel-2 true colour and the land-cover map with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    with rasterio.open(SAMPLE_S2) as src:
        rgb = np.stack([_stretch(src.read(b).astype(np.float32)) for b in (4, 3, 2)], axis=-1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    axes[0].imshow(rgb)
    axes[0].set_title("Sentinel-2 true colour")
    axes[1].imshow(_class_rgba(result.output, result))
    axes[1].set_title(f"{result.model_name}")
    handles = [Patch(color=np.array(hex_to_rgba(c.color)) / 255.0, label=c.name) for c in result.classes]
    axes[1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def run_demo(out_dir: Path) -> Iterator[str]:
    """Run every job that has a bundled model on the sample; yield one line per file written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"demo output folder is an existing file: {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    flood = map_floods(SAMPLE_S1, out_dir / "flood.tif", polygons=out_dir / "flood.gpkg")
    yield f"flood map: {flood.output} ({flood.flooded_km2:.2f} km² water, {flood.provider})"
    yield f"flood polygons: {flood.polygons}"
    yield f"flood preview: {flood_preview(flood, out_dir / 'flood.png')}"
    if any(card.task == "land_cover" for _, card in bundled_models()):
        lc = land_cover(SAMPLE_S2, out_dir / "land_cover.tif")
        yield f"land-cover map: {lc.output}"
        yield f"land-cover preview: {land_cover_preview(lc, out_dir / 'land_cover.png')}"
    else:
        yield "land cover: no bundled land-cover model yet, skipped"
