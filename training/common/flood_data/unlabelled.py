"""Unlabelled S1 scenes [VV, VH] in dB for distillation: BigEarthNet S1 patches and TerraMind S1RTC sites.

No labels: a teacher's p(water) is the only target on them. BigEarthNet v2 stores each patch as a
safetensors blob {band: 2-D array} in an LMDB (its S1 bands are backscatter in dB); the PyPI package
configilm==0.7.1 ships a real subset of it. TerraMind's S1RTC rasters are float32 [VV, VH] dB
(/work/shared/data/README.md). The readers here are shared with the contrastive kit.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import rasterio

from ..data_root import data_root

SOURCES = ("bigearthnet", "terramind")


def configilm_mock_lmdb() -> Path | None:
    """The BENv2 LMDB shipped inside configilm (found without importing the package), or None."""
    spec = importlib.util.find_spec("configilm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "extra/mock_data/BENv2/BigEarthNet-V2-LMDB"
    return path if (path / "data.mdb").is_file() else None


def read_s1(path: Path) -> np.ndarray:
    """(2, H, W) float32 dB; dataset nodata -> NaN."""
    with rasterio.open(path) as src:
        s1 = src.read([1, 2]).astype(np.float32)
        if src.nodata is not None and not np.isnan(src.nodata):
            s1[s1 == src.nodata] = np.nan
    return s1


def decode_s1(blob: bytes) -> np.ndarray:
    """(2, H, W) float32 [VV, VH] dB from a BENv2 S1 safetensors blob."""
    from safetensors.numpy import load

    bands = load(blob)
    return np.stack([bands["VV"], bands["VH"]]).astype(np.float32)


def bigearthnet_s1(lmdb_dir: Path) -> list[np.ndarray]:
    """Every S1 patch of a BENv2 LMDB (keys starting 'S1'), in key order."""
    import lmdb

    env = lmdb.open(str(lmdb_dir), readonly=True, lock=False, readahead=False, meminit=False)
    try:
        with env.begin() as txn:
            return [decode_s1(v) for k, v in txn.cursor() if k.startswith(b"S1")]
    finally:
        env.close()


def load_unlabelled(sources: list[str], root: Path | None = None) -> list[np.ndarray]:
    """The S1 scenes of the named sources; a source whose data is missing is an error, not an empty set."""
    scenes: list[np.ndarray] = []
    for source in sources:
        if source == "bigearthnet":
            lmdb_dir = configilm_mock_lmdb()
            if lmdb_dir is None:
                raise FileNotFoundError("BigEarthNet LMDB of configilm==0.7.1 not installed")
            found = bigearthnet_s1(lmdb_dir)
        elif source == "terramind":
            found = [
                read_s1(p) for p in sorted(((root or data_root()) / "terramind" / "S1RTC").glob("*.tif"))
            ]
        else:
            raise ValueError(f"unknown unlabelled source '{source}' (known: {', '.join(SOURCES)})")
        if not found:
            raise FileNotFoundError(f"no scenes of unlabelled source '{source}'")
        scenes += found
    return scenes
