"""BigEarthNet v2 S1/S2 patch pairs from an LMDB of safetensors (the layout of the official BENv2 LMDB).

Keys are product-style patch names; each value is a safetensors blob {band name: 2-D array} at the band's
native resolution (10/20/60 m -> 120/60/20 px). S2 patch `..._T33UUP_26_57` pairs with S1 `..._33UUP_26_57`
(same tile, same patch row/column). The PyPI package configilm==0.7.1 ships a real 24-pair subset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...models.bands import S2L2A_BANDS
from ..common.flood_data.unlabelled import decode_s1
from .scenes import PairedScene, s2_to_l1c13

PATCH = 120  # BigEarthNet patches are 1.2 km at 10 m


def patch_position(key: str) -> tuple[str, int, int] | None:
    """(tile, row, col) of an S1 or S2 BENv2 key; the S2 tile carries a leading 'T'."""
    parts = key.split("_")
    if len(parts) < 4:
        return None
    try:
        return parts[-3].removeprefix("T"), int(parts[-2]), int(parts[-1])
    except ValueError:
        return None


def _upsample(band: np.ndarray, size: int = PATCH) -> np.ndarray:
    """Nearest-neighbour upsampling of a 20/60 m band onto the 10 m grid (integer factor)."""
    factor = size // band.shape[0]
    if factor * band.shape[0] != size:
        raise ValueError(f"band of {band.shape} does not divide a {size}-pixel patch")
    return np.repeat(np.repeat(band, factor, axis=0), factor, axis=1)


def decode_pair(s1_blob: bytes, s2_blob: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """S1 (2, 120, 120) dB and S2 (13, 120, 120) L1C-ordered (B10 NaN) from two safetensors blobs."""
    from safetensors.numpy import load

    s1, s2_bands = decode_s1(s1_blob), load(s2_blob)
    raw = np.stack([_upsample(s2_bands[b]) for b in S2L2A_BANDS])
    s2, offset = s2_to_l1c13(raw, S2L2A_BANDS)
    return s1, s2, offset


def load_bigearthnet(lmdb_dir: Path, limit: int | None = None) -> list[PairedScene]:
    """Every S1/S2 pair in a BENv2 LMDB (sorted by S2 key), at most `limit`."""
    import lmdb

    env = lmdb.open(str(lmdb_dir), readonly=True, lock=False, readahead=False, meminit=False)
    try:
        with env.begin() as txn:
            keys = [k.decode() for k, _ in txn.cursor()]
            s1_by_pos = {patch_position(k): k for k in keys if k.startswith("S1")}
            scenes = []
            for key in sorted(k for k in keys if k.startswith("S2")):
                s1_key = s1_by_pos.get(patch_position(key))
                if s1_key is None:
                    continue
                s1, s2, offset = decode_pair(txn.get(s1_key.encode()), txn.get(key.encode()))
                scenes.append(PairedScene(key, "bigearthnet", s1, s2, "L2A", offset))
                if limit is not None and len(scenes) >= limit:
                    break
    finally:
        env.close()
    return scenes
