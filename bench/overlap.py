"""Overlap policy: how closely tiled inference with centre-weighted blending matches a whole-image run.

For each real chip (Sen1Floods11 S1Hand for flood models, S2Hand for land-cover models; 512 × 512), the
reference is the model run on the whole chip at once (one 512 tile). Tiled runs use tile 256 (or --tile)
with overlaps from 0 up; blending weights ramp linearly from a tile's edge over `overlap` pixels
(models/tiling.py). Agreement = share of valid pixels whose class equals the reference, pooled over chips,
and the worst chip. Cost = inferred pixels / output pixels on a whole 25000 × 16000 scene.

    python bench/overlap.py [--model NAME ...] [--tile 256] [--overlaps 0 8 16 32 48 64]

Writes bench/results/overlap.json; the recommendation is the smallest overlap with ≥ 99.5 % agreement
pooled, on the worst chip, and within 32 px of the tile seams (where disagreement concentrates).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from common import REPO, RESULTS, save_result
from contrasat.models.execution import Execution
from contrasat.models.pipeline import land_cover, map_floods
from contrasat.models.registry import resolve_model
from contrasat.models.tiling import tile_starts

DATA = REPO.parent / "shared" / "data" / "sen1floods11"
DATA = DATA if DATA.is_dir() else Path("/work/shared/data/sen1floods11")
SAMPLE = REPO / "resources" / "sample"
TARGET = 0.995
SEAM_HALF_WIDTH = 32  # the band around tile seams where agreement is also required


def chips(task: str) -> list[Path]:
    folder, pattern = ("S1Hand", "*_S1Hand.tif") if task == "flood" else ("S2Hand", "*_S2Hand.tif")
    found = sorted((DATA / folder).glob(pattern))
    return found or sorted(SAMPLE.glob(pattern))


def classes(task: str, chip: Path, out: Path, model: Path, tile: int, overlap: int) -> np.ndarray:
    config = Execution(tile=tile, overlap=overlap, batch=4, provider="cpu", threads=1)
    job = map_floods if task == "flood" else land_cover
    job(chip, out, model=model, config=config)
    with rasterio.open(out) as src:
        return src.read(1)


def seam_band(shape: tuple[int, int], tile: int, half: int = SEAM_HALF_WIDTH) -> np.ndarray:
    """Pixels within `half` px of a multiple of `tile` inside the chip: where tiles meet in every layout
    tried (seams concentrate the disagreement that a whole-chip share dilutes)."""
    h, w = shape
    near = lambda n: np.abs((np.arange(n) + tile // 2) % tile - tile // 2) < half  # noqa: E731
    rows, cols = near(h), near(w)
    rows[:half], cols[:half], rows[h - half :], cols[w - half :] = False, False, False, False
    return rows[:, None] | cols[None, :]


def scene_cost(tile: int, overlap: int, width: int = 25000, height: int = 16000) -> float:
    """Inferred pixels per output pixel for a whole scene with this tile and overlap."""
    n = len(tile_starts(width, tile, overlap)) * len(tile_starts(height, tile, overlap))
    return n * tile * tile / (width * height)


def study(name: str, tile: int, overlaps: list[int]) -> dict:
    model = resolve_model(name or None, "flood")
    from contrasat.models.card import read_card

    card = read_card(model)
    task = card.task
    rows = {o: {"agree": 0, "valid": 0, "worst": 1.0, "seam_agree": 0, "seam_valid": 0} for o in overlaps}
    used = chips(task)
    with tempfile.TemporaryDirectory() as tmp:
        for chip in used:
            whole = classes(task, chip, Path(tmp) / "whole.tif", model, 512, 0)
            valid = whole != card.output_nodata
            seam = valid & seam_band(whole.shape, tile)
            for overlap in overlaps:
                tiled = classes(task, chip, Path(tmp) / f"t{overlap}.tif", model, tile, overlap)
                same = int((tiled[valid] == whole[valid]).sum())
                rows[overlap]["agree"] += same
                rows[overlap]["valid"] += int(valid.sum())
                rows[overlap]["worst"] = min(rows[overlap]["worst"], same / max(int(valid.sum()), 1))
                rows[overlap]["seam_agree"] += int((tiled[seam] == whole[seam]).sum())
                rows[overlap]["seam_valid"] += int(seam.sum())
    table = [
        {"overlap": o, "agreement": round(r["agree"] / r["valid"], 5), "worst_chip": round(r["worst"], 5),
         "seam_agreement": round(r["seam_agree"] / max(r["seam_valid"], 1), 5), "scene_cost": round(scene_cost(tile, o), 3)}
        for o, r in rows.items()
    ]  # fmt: skip
    ok = [t for t in table if min(t["agreement"], t["worst_chip"], t["seam_agreement"]) >= TARGET]
    return {
        "model": card.name, "task": task, "card_tile": card.tile_size, "card_overlap": card.overlap, "tile": tile,
        "chips": [c.stem for c in used], "table": table,
        "recommended_overlap": min(t["overlap"] for t in ok) if ok else None,
    }  # fmt: skip


def apply(results: Path) -> list[str]:
    """Write each measured model's recommended overlap into its bundled card (the study's tile kept)."""
    from contrasat.models.card import read_card, write_card
    from contrasat.models.registry import WEIGHTS_DIR

    changed = []
    for m in json.loads(results.read_text())["models"]:
        path = WEIGHTS_DIR / f"{m['model']}.onnx"
        card = read_card(path)
        if m["recommended_overlap"] is None or card.tile_size != m["tile"]:
            continue  # no overlap met the target, or the card's tile is not the one measured
        if card.overlap != m["recommended_overlap"]:
            card.overlap = m["recommended_overlap"]
            write_card(path, card.validate())
            changed.append(f"{m['model']}: overlap {m['card_overlap']} -> {card.overlap}")
    return changed


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apply", action="store_true",
                        help="only write the recommended overlaps of bench/results/overlap.json into the cards")  # fmt: skip
    parser.add_argument("--model", nargs="+", default=["", "landcover_s2"], help="'' = default flood model")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 8, 16, 32, 48, 64])
    args = parser.parse_args()
    if args.apply:
        return {"applied": apply(RESULTS / "overlap.json")}
    # land-cover models need their task's default when given by name; resolve_model takes names as they are
    result = {
        "benchmark": "tiled vs whole-image classes on real 512x512 chips, centre-weighted (linear ramp) blending",
        "target_agreement": TARGET, "cpu_count": os.cpu_count(),
        "models": [study(m, args.tile, args.overlaps) for m in args.model],
    }  # fmt: skip
    return save_result("overlap", result)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
