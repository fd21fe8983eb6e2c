"""Water probability of a fine-tunable network over any window, tile by tile with context (bounded memory).

Its own module because both the job (held-back scoring) and the scene prior (prior.py) predict with it.
"""

from __future__ import annotations

import numpy as np
import torch

from .base_weights import FloodNet

TILE, CONTEXT = 256, 32  # held-back regions larger than a tile are predicted tile by tile, with context


def _padded(x: np.ndarray, multiple: int) -> torch.Tensor:
    h, w = x.shape[1:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return torch.from_numpy(np.pad(x, ((0, 0), (0, ph), (0, pw))))[None]


def predict_water(net: FloodNet, x: np.ndarray) -> np.ndarray:
    """Water probability (h, w) of a (C, h, w) input; memory bounded by one tile plus its context."""
    h, w = x.shape[1:]
    out = np.zeros((h, w), np.float32)
    with torch.no_grad():
        for r in range(0, h, TILE):
            for c in range(0, w, TILE):
                r0, c0 = max(r - CONTEXT, 0), max(c - CONTEXT, 0)
                r1, c1 = min(r + TILE + CONTEXT, h), min(c + TILE + CONTEXT, w)
                probs = torch.softmax(net(_padded(x[:, r0:r1, c0:c1], net.multiple)), dim=1)[0, 1].numpy()
                rr, cc = min(r + TILE, h), min(c + TILE, w)
                out[r:rr, c:cc] = probs[r - r0 : rr - r0, c - c0 : cc - c0]
    return out
