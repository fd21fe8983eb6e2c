"""Two CPU processes under torchrun (gloo) run the same pre-training code and end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from contrastive_helpers import terramind_root

WORKER = """
import json, sys, torch
from pathlib import Path
from contrasat.training.contrastive.config import PretrainConfig
from contrasat.training.contrastive.pretrain import pretrain
out = Path(sys.argv[1])
cfg = PretrainConfig(method="multimodal", sources=["terramind"], exclude=[], steps=3, batch=4, crop=32,
                     width=8, proj_dim=8, ckpt_every=3, seed=4)
r = pretrain(cfg, out / "run", progress=False)
torch.save(r["state"], out / f"rank{r['rank']}.pt")
(out / f"rank{r['rank']}.json").write_text(json.dumps(r["history"]["loss"]))
"""


def test_two_process_ddp_ranks_agree(tmp_path: Path) -> None:
    terramind_root()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    s0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    init = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert init["step"] == 3
    moved = 0
    for k in s0:
        assert torch.equal(s0[k], s1[k]), f"ranks disagree on {k}"
    from contrasat.training.contrastive.config import PretrainConfig
    from contrasat.training.contrastive.pretrain import build_model

    fresh = build_model(PretrainConfig(method="multimodal", width=8, proj_dim=8, seed=4)).state_dict()
    moved = sum(not torch.equal(fresh[k], s0[k]) for k in s0 if s0[k].is_floating_point())
    assert moved > 0, "no parameter changed: the run did not train"
    # the loss is computed on the all-gathered global batch, so both ranks log the same values
    assert json.loads((tmp_path / "rank0.json").read_text()) == pytest.approx(
        json.loads((tmp_path / "rank1.json").read_text())
    )
