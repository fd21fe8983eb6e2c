"""Saved downstream runs: a finetune directory (model.pt + result.json) or one entry of an experiment grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ...models.card import InputSpec
from ..common.networks.segnet import SegNet
from .experiment import INIT
from .pool import spec_dict, specs_from_dict
from .pretrain import load_encoders
from .tasks import TaskData

TASK_INPUTS = {"flood_s1": (["s1"], 2), "flood_fusion": (["s1", "s2"], 2), "landcover_s2": (["s2"], 10)}


def save_run(folder: Path, net: SegNet, specs: dict[str, InputSpec], result: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "model.pt")
    result = {**result, "specs": {k: spec_dict(v) for k, v in specs.items()}}
    (folder / "result.json").write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")


def load_net(task: str, width: int, state_path: Path) -> SegNet:
    names, classes = TASK_INPUTS[task]
    net = SegNet(names, classes, width)
    net.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    return net.eval()


def load_run(folder: Path) -> tuple[dict[str, Any], SegNet, dict[str, InputSpec]]:
    """A finetune run directory written by save_run."""
    result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    net = load_net(result["config"]["task"], int(result["width"]), folder / "model.pt")
    return result, net, specs_from_dict(result["specs"])


def load_grid_run(grid: Path, key: str) -> tuple[dict[str, Any], SegNet, dict[str, InputSpec]]:
    """One downstream run of an experiment grid, by key 'task/method/mode/fraction/sSEED'."""
    rows = [json.loads(x) for x in (grid / "results.jsonl").read_text().splitlines() if x.strip()]
    row = next((r for r in rows if r["key"] == key), None)
    if row is None:
        raise KeyError(f"no run '{key}' in {grid / 'results.jsonl'}")
    config = json.loads((grid / "config.json").read_text())
    width = int(config["finetune"]["width"])
    enc = load_encoders(grid / "pretrain" / f"multimodal_s{row['seed']}")
    net = load_net(row["task"], width, grid / row["model"])
    run_cfg = {**config["finetune"], **{k: row[k] for k in ("task", "mode", "fraction", "seed")}}
    run_cfg["init"] = row["method"]
    used = INIT[row["task"]][row["method"]]
    pretrain = {**config["pretrain"], "method": " + ".join(used) or "none (random init)", "seed": row["seed"]}
    result = {**row, "config": run_cfg, "pretrain": pretrain}
    return result, net, specs_from_dict(enc["specs"])


def task_summary(data: TaskData) -> dict[str, Any]:
    return {"split": data.split, "train": [s.name for s in data.train], "test": data.test.name}
