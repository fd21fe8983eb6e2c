"""A few steps of each method lower its loss; checkpoints resume exactly; downstream heads learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from contrasat.training.contrastive.config import FinetuneConfig, PretrainConfig
from contrasat.training.contrastive.finetune import finetune, make_batch
from contrasat.training.contrastive.pool import specs_from
from contrasat.training.contrastive.pretrain import batch_loss, build_model, pretrain
from contrasat.training.contrastive.scenes import load_terramind
from contrasat.training.contrastive.tasks import Sample, TaskData
from contrastive_helpers import terramind_root


@pytest.fixture(scope="module")
def scenes():
    return load_terramind(terramind_root())


def _tiny(method: str, steps: int, **kw) -> PretrainConfig:
    return PretrainConfig(
        method=method, steps=steps, batch=8, crop=32, width=8, proj_dim=16, lr=3e-3, warmup=2, seed=1,
        ckpt_every=2, **kw,
    )  # fmt: skip


def _fixed_batch_loss(model: torch.nn.Module, cfg: PretrainConfig, scenes, specs) -> float:
    """Loss on the same held batches before and after training (BN in eval mode: no batch noise)."""
    model.eval()
    with torch.no_grad():
        return float(
            np.mean(
                [
                    batch_loss(
                        model, cfg, scenes, specs, np.random.default_rng(99 + k), torch.device("cpu")
                    ).item()
                    for k in range(3)
                ]
            )
        )


@pytest.mark.parametrize("method", ["multimodal", "simclr_s1", "simclr_s2"])
def test_a_few_steps_lower_the_loss(method: str, scenes, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = _tiny(method, 25)
    specs = specs_from(scenes)
    before = _fixed_batch_loss(build_model(cfg), cfg, scenes, specs)
    result = pretrain(cfg, tmp_path, scenes, progress=False)
    model = build_model(cfg)
    model.load_state_dict(result["state"])
    after = _fixed_batch_loss(model, cfg, scenes, specs)
    assert after < before - 0.05, f"{method}: loss {before:.3f} -> {after:.3f}"
    enc = torch.load(tmp_path / "encoder.pt", weights_only=True)
    assert set(enc["encoders"]) == ({"s1", "s2"} if method == "multimodal" else {method[-2:]})
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_resume_continues_exactly(scenes, tmp_path: Path) -> None:
    """Stopped after 3 of 6 steps, then resumed == 6 steps in one go (model, optimiser, RNG checkpointed)."""
    torch.set_num_threads(1)
    whole = pretrain(_tiny("multimodal", 6), tmp_path / "whole", scenes, progress=False)
    pretrain(_tiny("multimodal", 6), tmp_path / "split", scenes, progress=False, until=3)
    assert torch.load(tmp_path / "split" / "ckpt.pt", weights_only=True)["step"] == 3
    resumed = pretrain(_tiny("multimodal", 6), tmp_path / "split", scenes, progress=False)
    assert resumed["history"]["loss"] == whole["history"]["loss"]
    for k, v in whole["state"].items():
        assert torch.allclose(v.float(), resumed["state"][k].float(), atol=1e-6), k
    with pytest.raises(ValueError, match="different recipe"):
        pretrain(_tiny("multimodal", 6, temperature=0.5), tmp_path / "split", scenes, progress=False)


def test_fusion_head_learns(scenes) -> None:
    """A few fine-tuning steps of the S1+S2 segmentation net lower its loss on held batches."""
    torch.set_num_threads(1)
    water = [
        Sample(s.name, s.s1, s.s2, np.where(s.label == 1, 1, np.where(s.label < 0, -1, 0))) for s in scenes
    ]
    data = TaskData("flood_fusion", ["s1", "s2"], 2, water[1:], water[0], "test")
    specs = specs_from(scenes)
    cfg = FinetuneConfig(task="flood_fusion", steps=30, batch=8, crop=32, width=8, lr=5e-3)
    run = finetune(data, cfg, specs, None, progress=False)
    first, last = np.mean(run.history["loss"][:5]), np.mean(run.history["loss"][-5:])
    assert last < first - 0.05, f"fusion loss {first:.3f} -> {last:.3f}"
    xs, y = make_batch(data, cfg, specs, np.random.default_rng(0))
    assert [x.shape[1] for x in xs] == [2, 13] and y.shape == (8, 32, 32)
    assert 0.0 <= run.metrics["water_iou"] <= 1.0
