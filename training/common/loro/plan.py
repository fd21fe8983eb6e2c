"""The LORO plan (recipes, folds, scoring strides; fixed in TOML before the runs) and its saved results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomllib


def read_plan(path: Path) -> tuple[list[dict[str, Any]], list[list[str]], dict[str, int]]:
    """Recipe tables, folds (lists of held-out regions) and per-source scoring strides from the TOML plan."""
    plan = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return list(plan["recipe"]), [list(f) for f in plan["folds"]], plan.get("eval_step", {})


def collect(out: Path) -> dict[str, Any]:
    """{recipe: {seed: {region: {"source", "scores"}}}} from every fold saved under `out`."""
    table: dict[str, Any] = {}
    for path in sorted(out.glob("*/seed*/fold*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        seeds = table.setdefault(r["recipe"]["name"], {})
        regions_ = seeds.setdefault(str(r["seed"]), {})
        for h, s in r["scores"].items():
            regions_[h] = {"source": r["sources"][h], "scores": s, "seconds": r["seconds"]}
    return table
