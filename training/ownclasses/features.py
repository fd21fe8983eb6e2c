"""Per-pixel feature sets of a site: bands + indices, their neighbourhood means, and ONNX extractors.

Extractors are read like any bundled model (models.card + models.preprocess): the card names the input,
its bands and normalisation, so the study sees the features the runtime would compute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ...models.bands import S2L1C_BANDS
from ...models.card import read_card
from ...models.preprocess import prepare
from .sites import Site, band

CONTEXT_WINDOWS = (3, 7)


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised difference (a - b) / (a + b), 0 where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / (a + b)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def band_features(site: Site) -> np.ndarray:
    """(16, H, W): 13 bands as reflectance 0..1, NDVI, NDWI (B03/B08), NDBI (B11/B08); no data -> 0."""
    refl = np.nan_to_num(site.s2 / 10000.0, nan=0.0).astype(np.float32)
    b = {n: np.nan_to_num(band(site, n), nan=0.0) for n in ("B03", "B04", "B08", "B11")}
    idx = [_nd(b["B08"], b["B04"]), _nd(b["B03"], b["B08"]), _nd(b["B11"], b["B08"])]
    return np.concatenate([refl, np.stack(idx)])


def context_features(site: Site) -> np.ndarray:
    """(48, H, W): band features and their means over 3x3 and 7x7 windows (edges mirrored)."""
    bands = band_features(site)
    means = [ndimage.uniform_filter(bands, size=(1, w, w), mode="reflect") for w in CONTEXT_WINDOWS]
    return np.concatenate([bands, *means])


def extractor_features(path: Path, site: Site) -> np.ndarray:
    """(D, H, W) features of the whole site from an ONNX feature extractor (card task `features`)."""
    import onnxruntime as ort

    card = read_card(path)
    (spec,) = card.inputs
    if spec.sensor.startswith("S2"):
        raw = site.s2[[S2L1C_BANDS.index(b) for b in spec.bands]]
    elif site.s1 is None:
        raise ValueError(f"{site.name} has no S1 for extractor {card.name}")
    else:
        raw = site.s1
    x = prepare(raw, spec)[None]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {spec.name: x})[0][0]


def feature_stack(site: Site, names: list[str], extractors: dict[str, Path], cache: dict) -> np.ndarray:
    """The named feature sets concatenated along channels; `cache` keeps each site's sets between methods."""
    parts = []
    for name in names:
        key = (site.name, name)
        if key not in cache:
            if name == "bands":
                cache[key] = band_features(site)
            elif name == "context":
                cache[key] = context_features(site)
            else:
                cache[key] = extractor_features(extractors[name], site)
        parts.append(cache[key])
    return np.concatenate(parts)
