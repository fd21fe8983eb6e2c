"""Fine-tune a bundled flood model on an analyst's own labels (`contrasat finetune`).

Start: the base model's own weights (read back from its ONNX file, base_weights.py). Phase 1 trains the
decoder with the encoder frozen; phase 2 (unless `unfreeze` is off) trains everything at a lower rate.
Crops are centred on labelled pixels drawn class by class (each class weighs the same however much of it
was drawn) and the loss is the mean of per-class cross-entropies, plus (`distill`) the KL divergence from the
start model to the network on the crops' unlabelled pixels: polygons sit well inside one class, so without it
nothing keeps the water/dry boundary where the start model had it, and fine-tunes spread water past shores.
Optionally (`prior="scene"`) the water logit is moved to the scene's estimated water share (prior.py). Held-back regions (whole polygons) are
scored every `eval_every` steps; the state with the lowest held-back loss is kept, including the base
model itself at step 0, so fine-tuning never ships weights that scored worse on the held-back polygons
than what it started from. A phase ends early after `patience` evaluations without improvement.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from ...models.card import ModelCard
from ...models.errors import InputError
from ...models.notes import warning
from ...models.output_set import OutputSet, verify_model
from ...models.registry import FINETUNE_BASE, resolve_model
from ..common.export import export_s1_net
from ..common.figures import round_score
from ..common.metrics import IGNORE, Counts, confusion
from .base_weights import THRESHOLD_LR, FloodNet, hold_batchnorm, load_base, random_like
from .labels import LabelSet, Region, read_labels, split_regions
from .predict import predict_water
from .prior import correct_prior

METHOD = "fine-tuned on user labels"


@dataclass
class FinetuneConfig:
    """The fine-tuning recipe (stored in the card)."""

    steps: int = 200  # at most, over both phases
    frozen_share: float = 0.5  # share of the steps with the encoder frozen
    unfreeze: bool = True
    batch: int = 8
    crop: int = 64
    lr: float = 1e-4  # chosen on development chips (docs/results/finetune.md, "Choosing the recipe")
    lr_unfrozen: float = 3e-5
    eval_every: int = 20
    patience: int = 4
    holdout: float = 0.25  # share of each class's regions held back (by region)
    edge: int = 1  # pixels eroded from polygon edges (the edge rule)
    seed: int = 0
    threads: int = 1
    init: str = "base"  # "base" (the model's weights) or "random" (same network, the study's baseline)
    loss: str = "balanced"  # "balanced": mean of per-class CE; "pixel": plain CE over labelled pixels
    prior: str = "none"  # "scene": shift the water logit to the scene's water share (EM, prior.py)
    distill: float = 1.0  # weight of a KL term keeping unlabelled pixels near the start model's output


@dataclass
class FinetuneResult:
    """What a fine-tune produced; `to_dict()` is the job summary."""

    net: FloodNet
    card: ModelCard
    history: dict[str, list] = field(default_factory=dict)
    heldout: dict[str, Counts] = field(default_factory=dict)  # "finetuned"/"base" -> counts
    best_step: int = 0
    seconds: float = 0.0
    output: Path | None = None
    curve: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output) if self.output else None, "curve": str(self.curve) if self.curve else None,
            "model_name": self.card.name, "best_step": self.best_step, "seconds": round(self.seconds, 1),
            "heldout_water_iou": {k: round_score(c.iou) for k, c in self.heldout.items()},
            "training": self.card.training, "notes": [{"level": getattr(n, "level", "info"), "text": str(n)} for n in self.notes],
        }  # fmt: skip


# ---- batches ------------------------------------------------------------------------------------------


class CropSampler:
    """Crops centred (with jitter) on training pixels; the class of each centre drawn uniformly."""

    def __init__(self, regions: list[Region], crop: int, rng: np.random.Generator) -> None:
        self.regions, self.crop, self.rng = regions, crop, rng
        self.pixels: dict[int, list[tuple[int, np.ndarray]]] = {}
        for k, r in enumerate(regions):
            self.pixels.setdefault(r.cls, []).append((k, np.argwhere(r.label != IGNORE)))
        self.sizes = {c: np.array([len(p) for _, p in v], float) for c, v in self.pixels.items()}

    def one(self) -> tuple[np.ndarray, np.ndarray]:
        classes = sorted(self.pixels)
        cls = classes[self.rng.integers(len(classes))]
        sizes = self.sizes[cls]
        k, pix = self.pixels[cls][self.rng.choice(len(sizes), p=sizes / sizes.sum())]
        r, (row, col) = self.regions[k], pix[self.rng.integers(len(pix))]
        half = self.crop // 2
        row += int(self.rng.integers(-half // 2, half // 2 + 1))
        col += int(self.rng.integers(-half // 2, half // 2 + 1))
        x = np.zeros((r.x.shape[0], self.crop, self.crop), np.float32)
        y = np.full((self.crop, self.crop), IGNORE, np.int64)
        r0, c0 = row - half, col - half
        h, w = r.label.shape
        sr0, sc0, sr1, sc1 = max(r0, 0), max(c0, 0), min(r0 + self.crop, h), min(c0 + self.crop, w)
        if sr1 > sr0 and sc1 > sc0:
            x[:, sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = r.x[:, sr0:sr1, sc0:sc1]
            y[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = r.label[sr0:sr1, sc0:sc1]
        turns, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
        x, y = np.rot90(x, turns, axes=(1, 2)), np.rot90(y, turns)
        if flip:
            x, y = x[:, :, ::-1], y[:, ::-1]
        return np.ascontiguousarray(x), np.ascontiguousarray(y)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*(self.one() for _ in range(n)), strict=True)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def balanced_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the classes present of each class's mean cross-entropy (IGNORE excluded)."""
    ce = F.cross_entropy(logits, target.clamp(min=0), reduction="none")
    losses = [ce[target == c].mean() for c in target.unique().tolist() if c != IGNORE]
    return torch.stack(losses).mean() if losses else logits.sum() * 0.0


def distill_loss(logits: torch.Tensor, teacher: FloodNet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KL(start model || network) on the crop's unlabelled pixels that hold scene data (not padding)."""
    keep = (y == IGNORE) & (x.abs().sum(dim=1) > 0)
    if not keep.any():
        return logits.sum() * 0.0
    with torch.no_grad():
        ref = torch.log_softmax(teacher(x), dim=1)
    kl = (ref.exp() * (ref - torch.log_softmax(logits, dim=1))).sum(dim=1)
    return kl[keep].mean()


def train_prior(cfg: FinetuneConfig) -> float:
    """The water share the loss implies: classes weigh alike under the balanced loss and in crop draws."""
    return 0.5


# ---- evaluation ---------------------------------------------------------------------------------------


def predict_regions(net: FloodNet, regions: list[Region]) -> list[np.ndarray]:
    """Water probability (h, w) on each region's window."""
    net.eval()
    return [predict_water(net, r.x) for r in regions]


def score_regions(net: FloodNet, regions: list[Region]) -> tuple[Counts, float]:
    """Pooled water counts over the regions' labelled pixels and the balanced held-back loss."""
    counts, per_class = Counts(), {}
    for r, p in zip(regions, predict_regions(net, regions), strict=True):
        counts = counts + confusion(p > 0.5, r.label)
        keep = r.label != IGNORE
        prob = np.clip(np.where(r.label[keep] == 1, p[keep], 1 - p[keep]), 1e-6, 1.0)
        per_class.setdefault(r.cls, []).append(-np.log(prob))
    loss = float(np.mean([np.concatenate(v).mean() for v in per_class.values()])) if per_class else math.nan
    return counts, loss


# ---- training -----------------------------------------------------------------------------------------


def train(
    net: FloodNet,
    train_regions: list[Region],
    val_regions: list[Region],
    cfg: FinetuneConfig,
    progress: Callable[[float], None] | None = None,
) -> tuple[FloodNet, dict[str, list], int]:
    """Fine-tune `net` in place; returns the kept state, the history and the step it was taken at."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    sampler = CropSampler(train_regions, cfg.crop, rng)
    history: dict[str, list] = {
        "step": [],
        "loss": [],
        "eval_step": [],
        "eval_loss": [],
        "eval_iou": [],
        "phase": [],
    }
    frozen_steps = int(round(cfg.steps * cfg.frozen_share)) if cfg.unfreeze else cfg.steps
    best = {"loss": math.inf, "state": copy.deepcopy(net.state_dict()), "step": 0}
    # a random start has nothing worth keeping
    teacher = copy.deepcopy(net).eval() if cfg.distill > 0 and cfg.init != "random" else None

    def evaluate(step: int) -> bool:
        """Score the held-back regions; True when this state is the best so far."""
        if not val_regions:
            return False
        counts, loss = score_regions(net, val_regions)
        history["eval_step"].append(step)
        history["eval_loss"].append(loss)
        history["eval_iou"].append(round_score(counts.iou))
        if loss < best["loss"] - 1e-4:
            best.update(loss=loss, state=copy.deepcopy(net.state_dict()), step=step)
            return True
        return False

    evaluate(0)
    step = 0
    phases = [("frozen", frozen_steps, cfg.lr)] + (
        [("unfrozen", cfg.steps - frozen_steps, cfg.lr_unfrozen)] if cfg.unfreeze else []
    )
    for phase, n_steps, lr in phases:
        if n_steps <= 0:
            continue
        if val_regions:
            net.load_state_dict(best["state"])  # each phase starts from the best state so far
        encoder = {id(p) for p in net.encoder_parameters()}
        for p in net.parameters():
            p.requires_grad_(phase == "unfrozen" or id(p) not in encoder)
        fast = {id(p) for p in net.fast_parameters()}
        trained = [p for p in net.parameters() if p.requires_grad]
        groups = [{"params": [p for p in trained if id(p) not in fast], "lr": lr}]
        groups += [{"params": [p for p in trained if id(p) in fast], "lr": THRESHOLD_LR, "weight_decay": 0.0}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=1e-4)
        stale = 0
        for _ in range(n_steps):
            net.train()
            hold_batchnorm(net)
            x, y = sampler.batch(cfg.batch)
            logits = net(x)
            loss = (
                balanced_loss(logits, y)
                if cfg.loss == "balanced"
                else F.cross_entropy(logits, y, ignore_index=IGNORE)
            )
            if teacher is not None:
                loss = loss + cfg.distill * distill_loss(logits, teacher, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            history["phase"].append(phase)
            if progress is not None:
                progress(step / cfg.steps)
            if step % cfg.eval_every == 0 and val_regions:
                stale = 0 if evaluate(step) else stale + 1
                if stale >= cfg.patience:
                    break
    if val_regions:
        if history["eval_step"][-1] != step:
            evaluate(step)
        net.load_state_dict(best["state"])
    else:
        best["step"] = step
    for p in net.parameters():
        p.requires_grad_(True)
    if progress is not None:
        progress(1.0)  # early stopping ends before the step budget
    return net.eval(), history, best["step"]


# ---- the job ------------------------------------------------------------------------------------------


def _counts(found: LabelSet, regions: list[Region], card: ModelCard) -> dict[str, dict[str, int]]:
    return {
        c.name: {"polygons": sum(r.cls == c.value for r in regions), "pixels": sum(r.n_pixels for r in regions if r.cls == c.value)}
        for c in card.classes
    }  # fmt: skip


def finetune_card(
    base: ModelCard, base_path: Path, name: str, found: LabelSet, train_r: list[Region], val_r: list[Region],
    heldout: dict[str, Counts], cfg: FinetuneConfig, rasters: list[str], best_step: int, seconds: float,
) -> ModelCard:  # fmt: skip
    """The fine-tuned model's card: the base's inputs/classes, and what it was fitted to and scored on."""
    card = copy.deepcopy(base)
    card.name = name
    card.description = (
        f"{base.name} {METHOD} ({found.label_file}, {len(found.regions)} labelled regions on "
        f"{', '.join(Path(r).name for r in rasters)}). Judged only on the analyst's held-back polygons: check "
        f"the map before trusting it elsewhere."
    )
    split = (
        f"{len(val_r)} of {len(found.regions)} labelled regions of {found.label_file} held back by region "
        "(whole polygons, never single pixels), scored on their labelled pixels after the edge rule"
    )
    card.metrics = (
        {"user_labels": {
            "split": split,
            "water_iou": {k: round_score(c.iou) for k, c in heldout.items()},
            "water_f1": {k: round_score(c.f1) for k, c in heldout.items()},
            "accuracy": {k: round_score(c.accuracy) for k, c in heldout.items()},
            "pixels": sum(r.n_pixels for r in val_r),
        }}
        if val_r else {"user_labels": {"split": "none: a class has a single region, so nothing could be held back"}}
    )  # fmt: skip
    card.training = {
        "method": METHOD,
        "base_model": {"name": base.name, "file": base_path.name, "training": base.training},
        "labels": {
            "file": found.label_file, "field": found.field, "rasters": [Path(r).name for r in rasters],
            "train": _counts(found, train_r, base), "heldout": _counts(found, val_r, base),
            "edge_rule": f"polygon masks eroded by {cfg.edge} px (3x3); pixels claimed by two classes or without "
                         "valid S1 dropped; points label one pixel",
        },
        "recipe": asdict(cfg), "best_step": best_step, "seconds": round(seconds, 1),
        "normalisation": "the base model's (card inputs unchanged)",
        "code": f"{run_finetune.__module__}.{run_finetune.__name__}",
    }  # fmt: skip
    return card.validate()


def check_paths(out: Path, inputs: list[Path], curve: bool = True) -> OutputSet:
    """The output must be a new .onnx path that is none of the inputs; returns the job's outputs (the model
    and its curve), written under temporary names and committed together at the end (models/output_set.py)."""
    if out.suffix.lower() != ".onnx":
        raise InputError(f"--out must be an .onnx file, not {out.name}")
    if out.is_dir():
        raise InputError(f"--out is a folder: {out}")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out does not exist: {out.parent}")
    for p in inputs:
        if p.exists() and out.exists() and os.path.samefile(out, p):
            raise InputError(f"--out would overwrite an input: {p.name}")
    outputs = OutputSet()
    outputs.check_inputs(inputs)
    outputs.add("fine-tuned model", out, "model")
    if curve:
        outputs.add("training curve", curve_path(out), "figure")
    return outputs


def curve_path(out: Path) -> Path:
    """The training curve written beside the model."""
    return out.with_name(out.stem + "_curve.png")


def run_finetune(
    base: str | None, raster: list[str], labels: str, out: str, field_name: str = "class",
    cfg: FinetuneConfig | None = None, progress: Callable[[float], None] | None = None, curve: bool = True,
) -> FinetuneResult:  # fmt: skip
    """The `contrasat finetune` job: labels -> fine-tuned ONNX model with its card (and a curve PNG)."""
    cfg = cfg or FinetuneConfig()
    torch.set_num_threads(max(1, cfg.threads))
    base_path = resolve_model(base or FINETUNE_BASE, "flood")
    out_path = Path(out)
    outputs = check_paths(out_path, [base_path, Path(labels), *map(Path, raster)], curve)
    try:
        result = _finetune(base_path, raster, labels, out_path, field_name, cfg, progress, outputs, curve)
        outputs.commit()  # a cancel before this line leaves an earlier model and its curve as they were
    except BaseException:
        outputs.discard()
        raise
    return result


def _finetune(
    base_path: Path, raster: list[str], labels: str, out_path: Path, field_name: str, cfg: FinetuneConfig,
    progress: Callable[[float], None] | None, outputs: OutputSet, curve: bool,
) -> FinetuneResult:  # fmt: skip
    """Train and write the outputs' temporaries (run_finetune commits them)."""
    start = time.perf_counter()
    net, base_card = load_base(base_path)
    found = read_labels(raster, labels, field_name, base_card, cfg.edge)
    train_r, val_r = split_regions(found, cfg.holdout, np.random.default_rng(cfg.seed))
    notes = list(found.notes)
    if not val_r:
        why = "none asked for" if cfg.holdout <= 0 else "a class has a single polygon"
        notes.append(f"no polygons held back ({why}): trained a fixed number of steps")
    base_counts = score_regions(net, val_r)[0] if val_r else None
    if cfg.init == "random":
        net = random_like(net, cfg.seed)
    net, history, best_step = train(net, train_r, val_r, cfg, progress)
    if val_r and best_step == 0 and cfg.init != "random" and cfg.prior == "none":
        notes.append(warning(
            "the base model did best on the held-back polygons, so the model written is the base model "
            "unchanged: add polygons where the base model's map is wrong"
        ))  # fmt: skip
    prior = None
    if cfg.prior == "scene":
        prior = correct_prior(net, raster, base_card, train_prior(cfg), cfg.seed)
        notes.append(
            f"water share of the scene estimated at {prior['scene_water_share']:.3f}: water logit shifted by "
            f"{prior['logit_shift']:+.2f} (polygons were {train_prior(cfg):.0%} water)"
        )
    heldout = {"finetuned": score_regions(net, val_r)[0], "base": base_counts} if val_r else {}
    seconds = time.perf_counter() - start
    name = out_path.stem
    card = finetune_card(
        base_card, base_path, name, found, train_r, val_r, heldout, cfg, raster, best_step, seconds
    )
    if prior is not None:
        card.training["prior_correction"] = prior
    result = FinetuneResult(net, card, history, heldout, best_step, seconds, notes=notes)
    model = outputs.outputs[0]
    export_s1_net(net.net, card, model.temp, tile=64)
    model.verify = verify_model(len(card.classes))
    result.output = out_path
    if curve:  # matplotlib is imported only when a curve is drawn (the study and the tests draw none)
        from . import plots

        plots.plot_finetune_curve(history, best_step, outputs.outputs[1].temp, f"{base_card.name} → {name}")
        result.curve = curve_path(out_path)
    return result


def export(net: FloodNet, card: ModelCard, out: Path) -> Path:
    """Write the ONNX model with its card under a temporary name, then rename it into place."""
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial.onnx")
    try:
        export_s1_net(net.net, card, partial, tile=64)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out
