"""The grid: pre-train every method per seed, then every task x method x mode x label fraction.

Results go to <out>/results.jsonl, one line per downstream run; finished runs are skipped on a rerun, so
an interrupted grid resumes. Seeds are the outer loop: whatever is done is a complete set of seeds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..common.config import to_dict
from .config import METHODS, ExperimentConfig
from .finetune import finetune
from .pool import load_pool, specs_from_dict
from .pretrain import load_encoders, pretrain
from .tasks import load_task

# Which pre-training run(s) initialise each task's encoders, per downstream method.
log = logging.getLogger(__name__)
INIT = {
    "flood_s1": {"multimodal": ["multimodal"], "simclr": ["simclr_s1"], "random": []},
    "flood_fusion": {"multimodal": ["multimodal"], "simclr": ["simclr_s1", "simclr_s2"], "random": []},
    "landcover_s2": {"multimodal": ["multimodal"], "simclr": ["simclr_s2"], "random": []},
}


def run_key(task: str, method: str, mode: str, fraction: str, seed: int) -> str:
    return f"{task}/{method}/{mode}/{fraction}/s{seed}"


def done_keys(results: Path) -> set[str]:
    if not results.is_file():
        return set()
    return {json.loads(line)["key"] for line in results.read_text().splitlines() if line.strip()}


def pretrain_dir(out: Path, method: str, seed: int) -> Path:
    return out / "pretrain" / f"{method}_s{seed}"


def run_experiment(cfg: ExperimentConfig, out: Path, progress: bool = False) -> Path:
    """Run (or resume) the whole grid; returns the results.jsonl path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=1), encoding="utf-8")
    results = out / "results.jsonl"
    done = done_keys(results)
    pool = load_pool(cfg.pretrain.sources, cfg.pretrain.exclude, ssl4eo_root=cfg.pretrain.ssl4eo_root)
    tasks = {(t, f): load_task(t, f) for t in cfg.tasks for f in cfg.fractions}
    for seed in cfg.seeds:
        for method in METHODS:
            folder = pretrain_dir(out, method, seed)
            if not (folder / "encoder.pt").is_file():
                pcfg = dataclasses.replace(cfg.pretrain, method=method, seed=seed)
                r = pretrain(pcfg, folder, pool, progress=progress)
                loss = r["history"]["loss"][-1]
                log.info("pretrain %s seed %s: %.0fs, final loss %.3f", method, seed, r["seconds"], loss)
        specs = specs_from_dict(load_encoders(pretrain_dir(out, "multimodal", seed))["specs"])
        for (task, fraction), data in tasks.items():
            for method, sources in INIT[task].items():
                for mode in cfg.modes:
                    key = run_key(task, method, mode, fraction, seed)
                    if key in done:
                        continue
                    fcfg = dataclasses.replace(
                        cfg.finetune, task=task, mode=mode, fraction=fraction, seed=seed
                    )
                    inits = [pretrain_dir(out, m, seed) for m in sources]
                    run = finetune(data, fcfg, specs, inits or None, progress=progress)
                    model_path = out / "models" / (key.replace("/", "_") + ".pt")
                    model_path.parent.mkdir(exist_ok=True)
                    torch.save(run.net.state_dict(), model_path)
                    row: dict[str, Any] = {
                        "key": key, "task": task, "method": method, "mode": mode, "fraction": fraction,
                        "seed": seed, "split": data.split, "metrics": run.metrics,
                        "seconds": round(run.seconds, 1), "final_loss": run.history["loss"][-1],
                        "model": str(model_path.relative_to(out)), "time": time.strftime("%H:%M:%S"),
                    }  # fmt: skip
                    with results.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
                    main = run.metrics.get("water_iou", run.metrics.get("miou"))
                    log.info("%s: %.3f (%.0fs)", key, main, run.seconds)
    return results
