"""Per-pixel features: the ten surface bands (reflectance) and five normalised-difference indices.

B01 (aerosol), B09 (water vapour) and B10 (cirrus) see the atmosphere, not the ground: in the first
exploratory leave-one-site-out run (all 13 bands) the trees learnt "B10 high = snow" from the one snowy site
and called a whole hazy crop site snow. They stay in the model input (the card lists all 13) but are not
features.

One definition in numpy (tree training, tests) and one in torch (the small network and the ONNX front of
the exported tree model); the tests hold them equal. The torch module takes the runtime's input — bands
normalised by the card's mean/std — and undoes that normalisation first, so the indices see reflectance.
"""

from __future__ import annotations

import numpy as np

from ...models.bands import S2L1C_BANDS

# name -> (band a, band b): index = (a - b) / (a + b + EPS), reflectance x 10000
INDICES: dict[str, tuple[str, str]] = {
    "NDVI": ("B08", "B04"),  # vegetation
    "NDWI": ("B03", "B08"),  # open water (McFeeters)
    "MNDWI": ("B03", "B11"),  # water and snow against built/bare (Xu)
    "NDBI": ("B11", "B08"),  # built-up and bare soil
    "NBR": ("B08", "B12"),  # moisture / burnt and bare ground
}
EPS = 1.0  # in DN: keeps a pixel with two zero bands at index 0 instead of NaN
SCALE = 1e-4  # bands enter the features as reflectance (0..1.5), the same order of size as the indices
SURFACE_BANDS: tuple[str, ...] = tuple(b for b in S2L1C_BANDS if b not in ("B01", "B09", "B10"))
FEATURE_NAMES: tuple[str, ...] = (*SURFACE_BANDS, *INDICES)
N_FEATURES = len(FEATURE_NAMES)
_SURFACE = [S2L1C_BANDS.index(b) for b in SURFACE_BANDS]
_PAIRS = [(S2L1C_BANDS.index(a), S2L1C_BANDS.index(b)) for a, b in INDICES.values()]


def features(reflectance: np.ndarray) -> np.ndarray:
    """(N, 13) reflectance x 10000 (offset removed, clipped) -> (N, 15) float32 features."""
    x = reflectance.astype(np.float32)
    cols = [x[:, _SURFACE] * np.float32(SCALE)]
    for a, b in _PAIRS:
        cols.append(((x[:, a] - x[:, b]) / (x[:, a] + x[:, b] + np.float32(EPS)))[:, None])
    return np.concatenate(cols, axis=1).astype(np.float32)


def torch_features():
    """The torch module class (imported lazily so the numpy side needs no torch)."""
    import torch

    class Features(torch.nn.Module):
        """(N, 13, H, W) card-normalised input -> (N, 15, H, W) features, as `features` computes them."""

        def __init__(self, mean: list[float], std: list[float], clip: tuple[float, float]) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
            self.lo, self.hi = float(clip[0]), float(clip[1])
            self.surface = list(_SURFACE)
            self.a = [a for a, _ in _PAIRS]
            self.b = [b for _, b in _PAIRS]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # Undo the card's normalisation and round to whole DN (S2 values are integers): the float
            # round-off of (x * std + mean) is gone, so every feature is bit-identical to the numpy one and
            # a tree threshold between two training values can never be crossed by round-off. A nodata
            # pixel (0 after prepare) becomes the mean: harmless, the runtime masks it anyway.
            refl = torch.clamp(torch.round(x * self.std + self.mean), self.lo, self.hi)
            a, b = refl[:, self.a], refl[:, self.b]
            return torch.cat([refl[:, self.surface] * SCALE, (a - b) / (a + b + EPS)], dim=1)

    return Features
