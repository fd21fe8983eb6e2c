"""Downstream training and scoring of a SegNet on a task, from random or pre-trained encoders."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ...models.card import InputSpec
from ..common.augment import AugmentConfig, radiometric
from ..common.losses import flood_loss, water_weight
from ..common.metrics import confusion
from ..common.networks.segnet import SegNet
from .config import FinetuneConfig
from .pretrain import load_encoders
from .tasks import Sample, TaskData
from .views import dihedral, normalise

S1_AUG = AugmentConfig(gain_db=2.0, vv_shift_db=3.0, noise_db=1.0)  # the flood recipe's mild S1 jitter


@dataclass
class FinetuneRun:
    net: SegNet
    specs: dict[str, InputSpec]
    metrics: dict[str, Any]
    history: dict[str, list] = field(default_factory=dict)
    seconds: float = 0.0


def merge_encoders(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One init from several pre-training runs (e.g. SimCLR-S1 + SimCLR-S2 for the fusion baseline)."""
    if len({int(r["width"]) for r in runs}) != 1:
        raise ValueError("pre-trained encoders to combine must have the same width")
    encoders: dict[str, Any] = {}
    for r in runs:
        encoders.update(r["encoders"])
    return {"encoders": encoders, "width": runs[0]["width"], "specs": runs[0]["specs"]}


def build_net(task: TaskData, cfg: FinetuneConfig, init: dict[str, Any] | None) -> SegNet:
    """SegNet with encoders copied from a pre-training run where it trained them (else random)."""
    torch.manual_seed(cfg.seed)
    net = SegNet(task.inputs, task.classes, cfg.width if init is None else int(init["width"]))
    for name in task.inputs:
        if init is not None and name in init["encoders"]:
            net.encoders[name].load_state_dict(init["encoders"][name])
    if cfg.mode == "frozen":
        net.freeze_encoders()
    return net


def _crop(sample: Sample, size: int, rng: np.random.Generator, water_focus: float) -> tuple[int, int]:
    h, w = sample.label.shape
    if water_focus and rng.random() < water_focus:
        ys, xs = np.nonzero(sample.label == 1)
        if ys.size:
            k = int(rng.integers(ys.size))
            return int(np.clip(ys[k] - size // 2, 0, h - size)), int(np.clip(xs[k] - size // 2, 0, w - size))
    return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))


def make_batch(
    task: TaskData, cfg: FinetuneConfig, specs: dict[str, InputSpec], rng: np.random.Generator
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Crops from samples drawn uniformly, same window and orientation in every input and the label."""
    per_input: dict[str, list[np.ndarray]] = {n: [] for n in task.inputs}
    labels = []
    flood = task.task.startswith("flood")
    for k in rng.integers(len(task.train), size=cfg.batch):
        s = task.train[int(k)]
        y0, x0 = _crop(s, cfg.crop, rng, 0.3 if flood else 0.0)
        sl = (slice(y0, y0 + cfg.crop), slice(x0, x0 + cfg.crop))
        arrays = [getattr(s, n)[(slice(None), *sl)] for n in task.inputs] + [s.label[sl]]
        arrays = dihedral(arrays, rng)
        for n, a in zip(task.inputs, arrays[:-1], strict=True):
            if n == "s1":
                a = radiometric(a, S1_AUG, specs["s1"].mean[0], rng)
            elif "s1" in task.inputs and rng.random() < cfg.s2_dropout:
                a = np.full_like(a, np.nan)  # S2 missing: the network must also work from S1 alone
            per_input[n].append(normalise(a, specs[n]))
        label = arrays[-1].copy()
        if "s1" in task.inputs:
            label[~np.all(np.isfinite(arrays[0]), axis=0)] = -1
        labels.append(label)
    xs = [torch.from_numpy(np.stack(per_input[n])) for n in task.inputs]
    return xs, torch.from_numpy(np.stack(labels).astype(np.int64))


@torch.no_grad()
def predict(net: SegNet, sample: Sample, specs: dict[str, InputSpec]) -> np.ndarray:
    """(C, H, W) class probabilities of a whole sample (H, W multiples of 4)."""
    net.eval()
    xs = [torch.from_numpy(normalise(getattr(sample, n), specs[n]))[None] for n in net.names]
    return torch.softmax(net(*xs), dim=1)[0].numpy()


def score(net: SegNet, task: TaskData, specs: dict[str, InputSpec]) -> dict[str, Any]:
    """Flood: water IoU/F1/accuracy. Land cover: mIoU over the test site's classes, per-class IoU, accuracy."""
    probs = predict(net, task.test, specs)
    label = task.test.label
    if task.task.startswith("flood"):
        valid = np.all(np.isfinite(task.test.s1), axis=0)
        c = confusion(probs[1] > 0.5, label, valid)
        return {"water_iou": c.iou, "water_f1": c.f1, "accuracy": c.accuracy, "counts": c.summary()}
    pred = probs.argmax(axis=0)
    keep = label >= 0
    ious = {}
    for cls in sorted(int(v) for v in np.unique(label[keep])):
        inter = np.sum((pred == cls) & (label == cls) & keep)
        union = np.sum(((pred == cls) | (label == cls)) & keep)
        ious[cls] = float(inter / union)
    return {
        "miou": float(np.mean(list(ious.values()))),
        "class_iou": ious,
        "accuracy": float(np.mean(pred[keep] == label[keep])),
    }


def finetune(
    task: TaskData,
    cfg: FinetuneConfig,
    specs: dict[str, InputSpec],
    init_dirs: list[Path] | None = None,
    progress: bool = True,
) -> FinetuneRun:
    """Train the decoder (frozen) or everything (finetune) for cfg.steps, then score the test sample."""
    cfg.validate()
    torch.set_num_threads(cfg.threads)
    init = merge_encoders([load_encoders(d) for d in init_dirs]) if init_dirs else None
    net = build_net(task, cfg, init)
    rng = np.random.default_rng(cfg.seed)
    enc = [p for p in net.encoders.parameters() if p.requires_grad]
    groups = [{"params": list(net.decoder.parameters()), "lr": cfg.lr}]
    if enc:
        groups.append({"params": enc, "lr": cfg.lr * cfg.encoder_lr_scale})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=cfg.steps, pct_start=0.1
    )
    flood = task.task.startswith("flood")
    if flood:
        valid = sum(int((s.label >= 0).sum()) for s in task.train)
        w_water = water_weight(sum(int((s.label == 1).sum()) for s in task.train) / max(valid, 1))
    hist: dict[str, list] = {"step": [], "loss": []}
    t0 = time.time()
    bar = tqdm(range(cfg.steps), desc=f"{task.task} {cfg.mode}", disable=not progress, leave=False)
    for step in bar:
        net.train()
        xs, y = make_batch(task, cfg, specs, rng)
        logits = net(*xs)
        if flood:
            loss = flood_loss(logits, y, w_water, 0.5)
        else:
            loss = F.cross_entropy(logits, y, ignore_index=-1) if bool((y >= 0).any()) else logits.sum() * 0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist["step"].append(step + 1)
        hist["loss"].append(round(float(loss.item()), 5))
        bar.set_postfix(loss=f"{hist['loss'][-1]:.3f}")
    metrics = score(net, task, specs)
    return FinetuneRun(net.eval(), specs, metrics, hist, time.time() - t0)
