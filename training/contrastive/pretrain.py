"""The pre-training loop: multimodal (cross-modal InfoNCE) or SimCLR per modality, resumable, DDP-ready.

Writes into the run directory: ckpt.pt (resumable state, loaded with weights_only=True), encoder.pt
(encoders + normalisation, what downstream runs load), history.json and curve.png.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..common import distributed as ddp
from ..common.config import to_dict
from ..common.losses import info_nce, nt_xent
from ..common.networks import n_params
from ..common.schedule import scheduler, warmup_cosine
from .config import PretrainConfig
from .encoders import DualEncoder, Embedder
from .pool import load_pool, spec_dict, specs_from
from .scenes import PairedScene
from .views import multimodal_batch, simclr_batch


def build_model(cfg: PretrainConfig) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts them)
    if cfg.method == "multimodal":
        return DualEncoder(cfg.width, cfg.proj_dim)
    return Embedder(2 if cfg.method == "simclr_s1" else 13, cfg.width, cfg.proj_dim)


def batch_loss(
    model: torch.nn.Module,
    cfg: PretrainConfig,
    scenes: list[PairedScene],
    specs: dict,
    rng: np.random.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Draw one batch and return its loss (same code for every method, single process or DDP)."""
    if cfg.method == "multimodal":
        s1, s2, _ = multimodal_batch(scenes, cfg.crop, cfg.batch, specs, rng)
        z1, z2 = model(torch.from_numpy(s1).to(device), torch.from_numpy(s2).to(device))
        return info_nce(z1, z2, cfg.temperature)
    modality = "s1" if cfg.method == "simclr_s1" else "s2"
    a, b = simclr_batch(scenes, modality, cfg.crop, cfg.batch, specs, cfg.aug, rng)
    z = model(torch.from_numpy(np.concatenate([a, b])).to(device))  # one forward: BN sees both views
    za, zb = z.chunk(2)
    return nt_xent(za, zb, cfg.temperature)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def encoders_of(model: torch.nn.Module, method: str) -> dict[str, dict[str, torch.Tensor]]:
    """{'s1': state_dict, 's2': state_dict} of the encoders this method trained."""
    model = _unwrap(model)
    if method == "multimodal":
        return {"s1": model.s1.encoder.state_dict(), "s2": model.s2.encoder.state_dict()}
    return {"s1" if method == "simclr_s1" else "s2": model.encoder.state_dict()}


def save_checkpoint(path: Path, model, opt, step: int, hist: dict, rng, cfg: PretrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    state = {
        "model": _unwrap(model).state_dict(), "opt": opt.state_dict(), "step": step, "history": hist,
        "np_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "config": to_dict(cfg),
    }  # fmt: skip
    torch.save(state, tmp)
    tmp.replace(path)  # a crash mid-write never leaves a truncated checkpoint


def plot_curve(hist: dict[str, list], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(hist["step"], hist["loss"], lw=0.8, alpha=0.5, label="batch loss")
    if len(hist["loss"]) >= 10:
        k = max(5, len(hist["loss"]) // 20)
        smooth = np.convolve(hist["loss"], np.ones(k) / k, mode="valid")
        ax.plot(hist["step"][k - 1 :], smooth, lw=1.6, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def pretrain(
    cfg: PretrainConfig,
    out: Path,
    scenes: list[PairedScene] | None = None,
    progress: bool = True,
    until: int | None = None,
) -> dict[str, Any]:
    """Train (or resume) one run in `out`; returns {'history', 'seconds', 'params', 'state', 'rank'}.

    `until` stops after that step with a checkpoint (a time-boxed slice of the run; rerun to continue).
    """
    cfg.validate()
    rt = ddp.setup()
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    if scenes is None:
        scenes = load_pool(cfg.sources, cfg.exclude, ssl4eo_root=cfg.ssl4eo_root)
    scenes = [s for s in scenes if min(s.shape) >= cfg.crop]
    if not scenes:
        raise ValueError(f"no paired scene is at least {cfg.crop} px on a side")
    specs = specs_from(scenes)
    model = ddp.wrap(build_model(cfg), rt)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = scheduler(opt, cfg.warmup, cfg.steps)
    scaler = torch.amp.GradScaler("cuda", enabled=rt.amp)
    rng = np.random.default_rng([cfg.seed, rt.rank])  # each rank draws different crops
    hist: dict[str, list] = {"step": [], "loss": []}
    start, ckpt = 0, out / "ckpt.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=rt.device, weights_only=True)
        if state["config"] != to_dict(cfg) | {"steps": state["config"]["steps"]}:
            raise ValueError(f"{ckpt} was written by a different recipe; use a new run directory")
        _unwrap(model).load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, hist = int(state["step"]), state["history"]
        if rt.world == 1:  # per-rank streams are not saved; DDP resumes reseed from the step
            rng.bit_generator.state = state["np_rng"]
            torch.set_rng_state(state["torch_rng"])
        else:
            rng = np.random.default_rng([cfg.seed, rt.rank, start])
        sched.last_epoch = start  # continue the schedule where the checkpoint left it
        for group, base in zip(opt.param_groups, sched.base_lrs, strict=True):
            group["lr"] = base * warmup_cosine(start, cfg.warmup, cfg.steps)
    t0 = time.time()
    stop = cfg.steps if until is None else min(until, cfg.steps)
    bar = tqdm(range(start, stop), desc=f"pretrain {cfg.method}", disable=not (progress and rt.main))
    for step in bar:
        model.train()
        with torch.autocast(rt.device.type, dtype=torch.float16, enabled=rt.amp):
            loss = batch_loss(model, cfg, scenes, specs, rng, rt.device)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        hist["step"].append(step + 1)
        hist["loss"].append(round(float(loss.item()), 5))
        bar.set_postfix(loss=f"{hist['loss'][-1]:.3f}")
        if rt.main and ((step + 1) % cfg.ckpt_every == 0 or step + 1 == stop):
            save_checkpoint(ckpt, model, opt, step + 1, hist, rng, cfg)
    seconds = time.time() - t0
    ddp.sync_buffers(model)
    result = {"history": hist, "seconds": round(seconds, 1), "params": n_params(_unwrap(model))}
    if rt.main:
        torch.save(
            {"encoders": encoders_of(model, cfg.method), "width": cfg.width, "method": cfg.method,
             "specs": {k: spec_dict(v) for k, v in specs.items()}},
            out / "encoder.pt",
        )  # fmt: skip
        (out / "history.json").write_text(json.dumps({**result, "config": to_dict(cfg)}), encoding="utf-8")
        plot_curve(hist, out / "curve.png", f"{cfg.method} pre-training, seed {cfg.seed}")
    ddp.teardown()
    return {**result, "state": _unwrap(model).state_dict(), "rank": rt.rank}


def load_encoders(run_dir: Path) -> dict[str, Any]:
    """encoder.pt of a pre-training run: {'encoders', 'width', 'method', 'specs'} (weights_only)."""
    path = Path(run_dir) / "encoder.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no encoder.pt in {run_dir} (run `contrasat train contrastive pretrain` first)"
        )
    return torch.load(path, map_location="cpu", weights_only=True)
