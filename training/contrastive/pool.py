"""The pre-training pool (paired scenes from the configured sources) and its normalisation specs."""

from __future__ import annotations

from pathlib import Path

from ...models.bands import S1_BANDS, S2L1C_BANDS
from ...models.card import InputSpec
from ..common.data_root import data_root
from ..common.flood_data.sen1floods11 import S1_CLIP_DB, floods_dir
from ..common.flood_data.unlabelled import configilm_mock_lmdb
from .bigearthnet import load_bigearthnet
from .layouts import ssl4eo_pairs
from .ombria_pairs import load_ombria_pairs
from .scenes import PairedScene, finite_stats, load_sen1floods11_pairs, load_terramind

S2_CLIP = (0.0, 15000.0)  # reflectance x 10000 after offset removal; saturated/cloud values capped


def load_source(
    name: str, root: Path | None = None, ssl4eo_root: str = "", rgb_map: dict | None = None
) -> list[PairedScene]:
    """Scenes of one source; an unavailable source raises FileNotFoundError naming what is missing.

    'ombria' needs `rgb_map` (its 8-bit RGB -> reflectance map, fixed in the protocol config).
    """
    root = root or data_root()
    if name == "terramind":
        if not (root / "terramind" / "S1RTC").is_dir():
            raise FileNotFoundError(f"TerraMind samples not found at {root / 'terramind'}")
        return load_terramind(root / "terramind")
    if name == "sen1floods11":
        if not (floods_dir(root) / "S2Hand").is_dir():
            raise FileNotFoundError(f"Sen1Floods11 S2Hand not found at {floods_dir(root)}")
        return load_sen1floods11_pairs(floods_dir(root))
    if name == "bigearthnet":
        lmdb_dir = configilm_mock_lmdb()
        if lmdb_dir is None:
            raise FileNotFoundError("BigEarthNet v2 LMDB not found (pip install --no-deps configilm==0.7.1)")
        return load_bigearthnet(lmdb_dir)
    if name == "ombria":
        if not (root / "ombria" / "OmbriaS2").is_dir():
            raise FileNotFoundError(f"OMBRIA S2 not found at {root / 'ombria'}")
        if rgb_map is None:
            raise ValueError("source 'ombria' needs the RGB -> reflectance map of the protocol config")
        return load_ombria_pairs(root, rgb_map)
    if name == "ssl4eo":
        if not ssl4eo_root:
            raise FileNotFoundError("source 'ssl4eo' needs ssl4eo_root in the config")
        return ssl4eo_pairs(Path(ssl4eo_root))
    raise ValueError(f"unknown source '{name}' (terramind, sen1floods11, bigearthnet, ombria, ssl4eo)")


def load_pool(
    sources: list[str],
    exclude: list[str],
    root: Path | None = None,
    ssl4eo_root: str = "",
    rgb_map: dict | None = None,
) -> list[PairedScene]:
    scenes = [s for src in sources for s in load_source(src, root, ssl4eo_root, rgb_map)]
    return [s for s in scenes if s.name not in set(exclude)]


def specs_from(scenes: list[PairedScene]) -> dict[str, InputSpec]:
    """Card inputs 's1' and 's2' with the pool's per-band statistics (shared by every method)."""
    m1, s1 = finite_stats([s.s1 for s in scenes], S1_CLIP_DB)
    m2, s2 = finite_stats([s.s2 for s in scenes], S2_CLIP)
    return {
        "s1": InputSpec("s1", "S1", list(S1_BANDS), "dB", m1, s1, list(S1_CLIP_DB)),
        "s2": InputSpec("s2", "S2L1C", list(S2L1C_BANDS), "reflectance_x10000", m2, s2, list(S2_CLIP)),
    }


def spec_dict(spec: InputSpec) -> dict:
    return {"mean": spec.mean, "std": spec.std}


def specs_from_dict(data: dict) -> dict[str, InputSpec]:
    return {
        "s1": InputSpec("s1", "S1", list(S1_BANDS), "dB", data["s1"]["mean"], data["s1"]["std"], list(S1_CLIP_DB)),
        "s2": InputSpec(
            "s2", "S2L1C", list(S2L1C_BANDS), "reflectance_x10000", data["s2"]["mean"], data["s2"]["std"],
            list(S2_CLIP),
        ),
    }  # fmt: skip
