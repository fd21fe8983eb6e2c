"""The fine-tuning study's runs: polygons drawn on a chip's labelling blocks, `contrasat finetune` from
each start, every run scored and kept in a resumable results file."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

from ....models.card import read_card, write_card
from ....models.errors import InputError
from ...common.errors import UsageError
from ...common.figures import round_score
from ..job import FinetuneConfig, run_finetune
from ..label_draw import draw_polygons, write_labels
from .design import BASE, CHIPS, COUNTS, INITS, REFERENCES, SEEDS, SIMCLR
from .scoring import BLOCK, blocks, chip_paths, score_model


def simclr_commands(folder: Path, steps: int | None = None) -> list[list[str]]:
    """The contrastive kit's commands that build the SimCLR start: the bundled model's recipe, SimCLR encoder.

    flood_s1_contrastive is pre-training run multimodal/seed 0 + a flood decoder trained with the encoder
    frozen on one labelled chip (India_900498), seed 0; the same two steps with `--method simclr_s1` give a
    model of the same network and size whose encoder saw single-modality SimCLR instead.
    """
    more = ["--steps", str(steps)] if steps else []
    pre, flood = folder / "pretrain_simclr_s1", folder / "flood_simclr"
    return [
        ["train", "contrastive", "pretrain", "--method", "simclr_s1", "--seed", "0", "--quiet", "--out", str(pre), *more],
        ["train", "contrastive", "finetune", "--task", "flood_s1", "--init", str(pre), "--mode", "frozen",
         "--fraction", "one", "--seed", "0", "--quiet", "--out", str(flood), "--export",
         str(folder / f"{SIMCLR}.onnx"), *more],
    ]  # fmt: skip


def simclr_model(folder: Path, steps: int | None = None) -> Path:
    """The SimCLR-start ONNX model under `folder`, built by the contrastive kit when missing (CPU minutes)."""
    path = folder / f"{SIMCLR}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    for argv in simclr_commands(folder, steps):
        subprocess.run([sys.executable, "-m", "contrasat.cli", *argv], check=True)
    if not path.is_file():
        raise RuntimeError(f"the contrastive kit did not write {path}")
    card = read_card(path)  # the kit names every flood_s1 export after the bundled one: say what this is
    card.name = SIMCLR
    card.description = (
        "ResNet encoder pre-trained with single-modality SimCLR on S1 + U-Net decoder (encoder frozen, one "
        "labelled chip) on Sentinel-1 [VV, VH] dB: dry/water. Built by the fine-tuning study as a start to "
        "compare with flood_s1_contrastive; not bundled."
    )
    write_card(path, card)
    return path


def run_study(
    out: Path, chips=CHIPS, counts=COUNTS, seeds=SEEDS, inits=INITS, steps: int | None = None,
    overrides: dict[str, Any] | None = None, simclr: Path | None = None, simclr_steps: int | None = None,
    base: str = BASE,
) -> Path:  # fmt: skip
    """Every (chip, count, seed, init) fine-tune, scored; results appended to out/results.json.

    `overrides` change the recipe (FinetuneConfig fields); such runs are tagged with them, e.g. base+loss=pixel.
    The "simclr" start is the model `simclr_model` builds under `simclr` (default out/simclr); `base` is the
    bundled model (name or file) the "base" and "random" starts take, scored as a reference beside the rule.
    """
    tag = "".join(f"+{k}={v}" for k, v in sorted((overrides or {}).items()))

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("runs", {})
    results.setdefault("references", {})
    results["protocol"] = {
        "chips": list(chips), "counts": list(counts), "seeds": list(seeds), "inits": list(inits), "base": base,
        "block": BLOCK, "cpu": platform.processor() or platform.machine(), "torch_threads": 1,
        "recipe": {**asdict(FinetuneConfig()), **(overrides or {}), **({"steps": steps} if steps else {})},
    }  # fmt: skip
    starts: dict[str, str | Path] = {"base": base, "random": base}
    if "simclr" in inits:
        folder = simclr or out / "simclr"
        starts["simclr"] = simclr_model(folder, simclr_steps)
        results["protocol"]["simclr"] = {
            "model": SIMCLR, "commands": [" ".join(["contrasat", *a]) for a in simclr_commands(folder, simclr_steps)],
        }  # fmt: skip

    def save() -> None:
        path.write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory(prefix="finetune_study_") as tmp:
        scratch = Path(tmp)
        for chip in chips:
            s1, label_path = chip_paths(chip)
            with rasterio.open(label_path) as ds:
                label, transform, crs = ds.read(1), ds.transform, ds.crs
            refs = {r: r for r in (*REFERENCES, base)} | (
                {SIMCLR: starts["simclr"]} if "simclr" in starts else {}
            )
            for ref, model in refs.items():
                key = f"{chip}/{ref}"
                if key not in results["references"]:
                    results["references"][key] = score_model(model, chip, scratch)
                    save()
            for n in counts:
                for seed in seeds:
                    polygons = draw_polygons(
                        label, transform, n, np.random.default_rng(seed), blocks(label.shape)
                    )
                    labels = write_labels(
                        polygons, crs, scratch / f"labels_{n}_{seed}.geojson", dst_crs="EPSG:3857"
                    )
                    for init in inits:
                        key = f"{chip}/{n}/{seed}/{init}{tag}"
                        if key in results["runs"]:
                            continue
                        cfg = FinetuneConfig(
                            seed=seed,
                            init="random" if init == "random" else "base",
                            threads=1,
                            **(overrides or {}),
                        )
                        if steps:
                            cfg.steps = steps
                        model = scratch / f"ft_{n}_{seed}_{init}.onnx"
                        start = time.perf_counter()
                        try:
                            result = run_finetune(
                                str(starts[init]), [str(s1)], str(labels), str(model), cfg=cfg, curve=False
                            )
                        except (
                            InputError
                        ) as exc:  # e.g. too few pixels: what a user would be told; kept as such
                            results["runs"][key] = {"chip": chip, "polygons": n, "seed": seed, "init": init + tag,
                                                    "refused": str(exc)}  # fmt: skip
                            save()
                            continue
                        seconds = time.perf_counter() - start
                        tr = result.card.training
                        results["runs"][key] = {
                            "chip": chip, "polygons": n, "seed": seed, "init": init + tag,
                            "drawn": len(polygons), "pixels": {p: {c: v["pixels"] for c, v in tr["labels"][p].items()}
                                                               for p in ("train", "heldout")},
                            "best_step": result.best_step, "steps_run": len(result.history["step"]),
                            "seconds_finetune": round(result.seconds, 1), "seconds_with_export": round(seconds, 1),
                            "heldout_iou": {k: round_score(c.iou) for k, c in result.heldout.items()},
                            "score": score_model(model, chip, scratch),
                        }  # fmt: skip
                        model.unlink()
                        save()
                        print(
                            key,
                            results["runs"][key]["score"]["iou"],
                            results["runs"][key]["seconds_finetune"],
                            flush=True,
                        )
    return path


def merge_results(parts: list[Path], out: Path) -> Path:
    """One results file from runs of the study split by chip (run side by side): runs and references joined,
    the protocol's chip lists joined; the parts must share every other protocol field."""
    merged: dict[str, Any] = {"runs": {}, "references": {}}
    for part in parts:
        results = json.loads(part.read_text())
        proto = dict(results["protocol"])
        if "protocol" in merged:
            same = {k: v for k, v in merged["protocol"].items() if k != "chips"}
            if same != {k: v for k, v in proto.items() if k != "chips"}:
                raise UsageError(f"{part}: protocol differs from the other parts; not merged")
            merged["protocol"]["chips"] += [c for c in proto["chips"] if c not in merged["protocol"]["chips"]]
        else:
            merged["protocol"] = proto
        merged["runs"].update(results["runs"])
        merged["references"].update(results["references"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=1))
    return out


def parse_setting(text: str) -> tuple[str, Any]:
    """KEY=VALUE as a FinetuneConfig field with its type (bool, int, float or str)."""
    key, _, value = text.partition("=")
    kinds = {f.name: f.type for f in fields(FinetuneConfig)}
    if key not in kinds:
        raise UsageError(f"unknown recipe key {key!r} (keys: {', '.join(kinds)})")
    kind = kinds[key]
    if kind == "bool":
        return key, value.lower() in ("1", "true", "yes")
    return key, int(value) if kind == "int" else float(value) if kind == "float" else value
