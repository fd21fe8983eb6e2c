"""Pre-trained S1 encoders under the flood leave-one-region-out protocol (issue 8, part 4).

Per fold of the flood plan: pre-train multimodal and SimCLR-S1 on the pool minus the fold's places, then
fine-tune one SegNet per start (multimodal, simclr, random) and seed on the fold's training regions and score
each held-out region with the shared LORO scoring (common/loro/: next to VH < -20 dB and Otsu, same
pixels). Results are saved per (start, seed, fold) in the flood kit's format, so an interrupted run resumes.

    nice contrasat train contrastive loro \
        --config training/configs/contrastive_loro.toml --out runs/contrastive_loro --phase pretrain
    nice contrasat train contrastive loro ... --phase finetune --starts random multimodal simclr   (a second
        process, in parallel)
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from ...models.card import InputSpec
from ..common.config import from_dict, to_dict
from ..common.data_root import REPO_ROOT
from ..common.errors import UsageError
from ..common.flood_data.regions import Chip, load_region, regions
from ..common.loro.plan import collect, read_plan
from ..common.loro.scoring import score_region
from ..common.loro.training import predict, train_region_balanced
from ..common.networks.segnet import SegNet
from .config import PretrainConfig
from .ombria_pairs import held_out_places
from .pool import load_pool, spec_dict, specs_from, specs_from_dict
from .pretrain import load_encoders, pretrain
from .scenes import PairedScene

PRETRAINED = {"multimodal": "multimodal", "simclr": "simclr_s1"}  # start -> pre-training method


@dataclass
class LoroFinetune:
    """Downstream budget and augmentation (a common.loro.training.CropAugment), the same for every start."""

    steps: int = 200
    batch: int = 16
    crop: int = 48
    lr: float = 3e-3
    encoder_lr_scale: float = 0.3
    gain_db: float = 3.0
    vv_water_raise_db: float = 10.0
    vv_raise_scope: str = "all"
    vv_dropout: float = 0.3
    noise_db: float = 1.0
    dice: float = 0.5
    mode: str = "finetune"  # "finetune": everything trains; "frozen": encoder fixed (a decoder probe)
    sources: list[str] = field(default_factory=lambda: ["sen1floods11", "etci2021", "ombria"])


@dataclass
class Protocol:
    pretrain: PretrainConfig
    finetune: LoroFinetune
    starts: list[str]
    seeds: list[int]
    rgb_map: dict[str, list[float]]
    folds: list[list[str]]
    strides: dict[str, int]
    pool_groups: list[list[int]]

    def group_of(self, fold: int) -> int:
        """Index of the pre-training pool group a fold belongs to."""
        return next(g for g, folds in enumerate(self.pool_groups) if fold in folds)

    def group_held(self, group: int) -> list[str]:
        """Every held-out region of the group's folds: none of their places enters its pool."""
        return [r for k in self.pool_groups[group] for r in self.folds[k]]


def read_protocol(path: Path) -> dict[str, Any]:
    """The TOML table; `base = "other.toml"` starts from that file and overrides its tables key by key."""
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    if "base" not in raw:
        return raw
    merged = read_protocol(Path(path).parent / raw.pop("base"))
    for key, value in raw.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    return merged


def load_protocol(path: Path) -> Protocol:
    """The protocol of a contrastive LORO run; a recipe value that does not fit its field is a UsageError."""
    try:
        return _protocol(path)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad protocol {path}: {exc}") from None


def _protocol(path: Path) -> Protocol:
    raw = read_protocol(path)
    _, folds, strides = read_plan(Path(path).parent / raw["flood_loro"])
    return Protocol(
        pretrain=from_dict(PretrainConfig, raw["pretrain"]),
        finetune=from_dict(LoroFinetune, raw["finetune"]),
        starts=list(raw["starts"]),
        seeds=list(raw["seeds"]),
        rgb_map={k: list(v) for k, v in raw["ombria_rgb"].items()},
        folds=folds,
        strides=strides,
        pool_groups=[list(g) for g in raw.get("pool_groups", [[k] for k in range(len(folds))])],
    )


def fold_pool(pool: list[PairedScene], held: list[str]) -> list[PairedScene]:
    """The pre-training pool without any place of the held-out regions."""
    drop = held_out_places(pool, held)
    return [s for s in pool if s.name not in drop]


def pretrain_fold(proto: Protocol, scenes: list[PairedScene], folder: Path, seed: int) -> dict[str, Any]:
    """Both pre-training runs of one fold and seed (skipped when done); returns their summaries."""
    info: dict[str, Any] = {"scenes": len(scenes), "ombria": sum(s.source == "ombria" for s in scenes)}
    for start, method in PRETRAINED.items():
        run_dir = folder / f"{method}_s{seed}"
        if not (run_dir / "encoder.pt").is_file():
            cfg = dataclasses.replace(proto.pretrain, method=method, seed=seed)
            pretrain(cfg, run_dir, scenes, progress=False)
        hist = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
        loss = hist["history"]["loss"]
        info[start] = {"seconds": hist["seconds"], "loss_first10": float(np.mean(loss[:10])),
                       "loss_last10": float(np.mean(loss[-10:]))}  # fmt: skip
    (folder / f"summary_s{seed}.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def finetune(
    init: dict[str, torch.Tensor] | None,
    spec: InputSpec,
    data: dict[str, list[Chip]],
    ft: LoroFinetune,
    width: int,
    seed: int,
) -> SegNet:
    """Train a SegNet on S1 from `init` (None = random); regions drawn uniformly, then a chip of the region."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SegNet(["s1"], 2, width)
    if init is not None:
        net.encoders["s1"].load_state_dict(init)
    if ft.mode not in ("finetune", "frozen"):
        raise ValueError(f"mode must be finetune or frozen, not '{ft.mode}'")
    groups = [{"params": list(net.decoder.parameters()), "lr": ft.lr}]
    if ft.mode == "frozen":
        net.freeze_encoders()  # also keeps the encoder's BatchNorm statistics from pre-training
    else:
        groups.append({"params": list(net.encoders.parameters()), "lr": ft.lr * ft.encoder_lr_scale})
    return train_region_balanced(net, groups, data, ft, spec, ft.steps, ft.batch, ft.dice, rng)


def pool_dir(out: Path, proto: Protocol, fold: int) -> Path:
    return out / "pretrain" / f"pool{proto.group_of(fold)}"


def run_pretrain(proto: Protocol, out: Path, folds: list[int]) -> None:
    """Phase 1 (one process: the pool is large): every pool's specs, then pre-training, seed by seed."""
    pt = proto.pretrain
    pool = load_pool(pt.sources, pt.exclude, ssl4eo_root=pt.ssl4eo_root, rgb_map=proto.rgb_map)
    print(f"pool: {len(pool)} paired scenes", flush=True)
    groups = sorted({proto.group_of(k) for k in folds})
    group_scenes = {}
    for g in groups:  # every pool's normalisation first, so random-init fine-tunes can start at once
        folder = out / "pretrain" / f"pool{g}"
        folder.mkdir(parents=True, exist_ok=True)
        group_scenes[g] = [s for s in fold_pool(pool, proto.group_held(g)) if min(s.shape) >= pt.crop]
        specs = {n: spec_dict(v) for n, v in specs_from(group_scenes[g]).items()}  # as pretrain() derives
        (folder / "specs.json").write_text(json.dumps(specs), encoding="utf-8")
        (folder / "held_out.json").write_text(json.dumps(proto.group_held(g)), encoding="utf-8")
    for seed in proto.seeds:  # seeds outer: whatever is done is a complete set of folds
        for g in groups:
            t0 = time.time()
            info = pretrain_fold(proto, group_scenes[g], out / "pretrain" / f"pool{g}", seed)
            print(f"pool{g} seed{seed} pre-training ({time.time() - t0:.0f}s): {info}", flush=True)


def claim(path: Path) -> bool:
    """Atomically mark a job as taken (two worker processes share one job list)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.with_suffix(".claim").open("x").close()
    except FileExistsError:
        return False
    return True


def run_finetune(proto: Protocol, out: Path, folds: list[int], starts: list[str]) -> None:
    """Phase 2: every (seed, fold, start) not saved or taken, as soon as its pre-training run exists."""
    data = {r.name: (r.source, load_region(r)) for r in regions()}
    jobs = [(seed, k, start) for seed in proto.seeds for k in folds for start in starts]
    while True:
        pending = [j for j in jobs if not (out / j[2] / f"seed{j[0]}" / f"fold{j[1]}.claim").is_file()]
        if not pending:
            return
        ready = [j for j in pending if _ready(out, proto, *j)]
        if not ready:
            time.sleep(15)
            continue
        seed, k, start = ready[0]
        path = out / start / f"seed{seed}" / f"fold{k}.json"
        if not claim(path):
            continue
        held, folder = proto.folds[k], pool_dir(out, proto, k)
        spec = specs_from_dict(json.loads((folder / "specs.json").read_text()))["s1"]
        init = None
        if start in PRETRAINED:
            init = load_encoders(folder / f"{PRETRAINED[start]}_s{seed}")["encoders"]["s1"]
        train_set = {n: c for n, (s, c) in data.items() if n not in held and s in proto.finetune.sources}
        t1 = time.time()
        net = finetune(init, spec, train_set, proto.finetune, proto.pretrain.width, seed)
        scores = {}
        for h in held:
            chips = data[h][1][:: proto.strides.get(data[h][0], 1)]
            scores[h] = score_region(predict(net, spec, chips, batch=4), chips)
        result = {"recipe": {"name": start, "finetune": to_dict(proto.finetune)}, "seed": seed,
                  "pretrain_seed": seed if start in PRETRAINED else None,
                  "held_out": held, "sources": {h: data[h][0] for h in held},
                  "train_regions": sorted(train_set), "seconds": round(time.time() - t1, 1),
                  "scores": scores}  # fmt: skip
        path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"fold{k} seed{seed} {start}: {result['seconds']:.0f}s", flush=True)


def _ready(out: Path, proto: Protocol, seed: int, k: int, start: str) -> bool:
    folder = pool_dir(out, proto, k)
    if start not in PRETRAINED:
        return (folder / "specs.json").is_file()
    return (folder / f"summary_s{seed}.json").is_file()  # written after both runs' encoder.pt


def results(config: Path, out: Path) -> dict[str, Any]:
    """The results file: protocol, pre-training summaries per fold, and every scored region."""
    proto = load_protocol(config)
    pre = {
        f"{p.parent.name}/{p.stem.removeprefix('summary_')}": json.loads(p.read_text())
        for p in sorted((out / "pretrain").glob("pool*/summary_s*.json"))
    }
    return {
        "config": str(config.resolve().relative_to(REPO_ROOT)) if config.resolve().is_relative_to(REPO_ROOT) else str(config),
        "protocol": {"pretrain": to_dict(proto.pretrain), "finetune": to_dict(proto.finetune),
                     "starts": proto.starts, "seeds": proto.seeds, "rgb_map": proto.rgb_map,
                     "folds": proto.folds, "strides": proto.strides, "pool_groups": proto.pool_groups},
        "pretrain": pre,
        "pool_held_out": {
            p.parent.name: json.loads(p.read_text()) for p in sorted((out / "pretrain").glob("pool*/held_out.json"))
        },
        "table": collect(out),
    }  # fmt: skip


def run_protocol(
    config: Path, out: Path, folds: list[int] | None, phase: str | None, starts: list[str] | None
) -> None:
    """Both phases (or `phase` alone) of the protocol in `config` over `folds` (default: all)."""
    torch.set_num_threads(1)
    proto = load_protocol(config)
    folds = folds if folds is not None else list(range(len(proto.folds)))
    if phase in (None, "pretrain"):
        run_pretrain(proto, out, folds)  # then, with no phase, join the fine-tuning
    if phase in (None, "finetune"):
        run_finetune(proto, out, folds, starts or proto.starts)
