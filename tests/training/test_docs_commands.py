"""What the docs tell a user to run: every `contrasat train ...` command in a docs code block is accepted by
the parser (a renamed or missing flag fails here, not in a reader's terminal), and the results page's
Reproduce block names the shipped recipe alone and the fine-tune curve's own start model."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from contrasat.training.cli import build_parser
from contrasat.training.common.loro.plan import read_plan
from contrasat.training.flood.region_reproduce import reproduce_lines, scored_folds

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "training.md", *sorted((ROOT / "docs" / "results").glob("*.md"))]


def train_commands(text: str) -> list[str]:
    """`contrasat train` lines of the fenced code blocks, continuations joined, comments and `nice` dropped."""
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip().removeprefix("nice ")
            if line.startswith("contrasat train ") and "..." not in line.split():  # "..." is a placeholder
                found.append(line)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_train_command_parses(doc: Path) -> None:
    parser = build_parser()
    for line in train_commands(doc.read_text(encoding="utf-8")):
        try:
            parser.parse_args(shlex.split(line)[2:])
        except SystemExit:
            pytest.fail(f"{doc.name}: not accepted by `contrasat train`: {line}")


def test_the_docs_hold_train_commands_to_check() -> None:
    assert len(train_commands((ROOT / "docs" / "training.md").read_text(encoding="utf-8"))) >= 20
    joined = train_commands("```\nnice contrasat train flood loro \\\n  --out x   # note\n```\n")
    assert [line.split() for line in joined] == [["contrasat", "train", "flood", "loro", "--out", "x"]]


def _args(**extra) -> argparse.Namespace:
    return argparse.Namespace(
        shipped="m", safeguard="model", model_name="flood_x", default="flood_x", **extra
    )


def test_scored_folds_are_those_whose_regions_were_all_scored() -> None:
    folds = [["A", "B"], ["C"], ["D", "E"]]
    assert scored_folds(folds, ["A", "B", "C", "D"]) == [0, 1]
    assert scored_folds(folds, []) == []


def test_reproduce_block_runs_the_shipped_recipe_alone_and_the_curve_from_its_own_start(
    tmp_path: Path,
) -> None:
    folds = read_plan(ROOT / "training" / "configs" / "flood_loro.toml")[1]
    scored = [r for held in folds[:4] for r in held]  # OMBRIA folds 4-5 not run
    curve = tmp_path / "curve.json"
    study = {"protocol": {"base": "models/weights/flood_x.onnx", "chips": ["Mekong_333434"], "counts": [20, 40],
                          "seeds": [0, 1], "inits": ["base"]}}  # fmt: skip
    lines = reproduce_lines(_args(finetune_curve=curve), scored, folds, study)
    loro = [line for line in lines if " loro " in line]
    assert loro[1].split("   #")[0].endswith("--only m --seeds 0 --folds 0 1 2 3")
    assert (
        "nice contrasat train finetune study --out runs/finetune_curve --base models/weights/flood_x.onnx "
        "--chips Mekong_333434 --counts 20 40 --seeds 0 1 --inits base"
    ) in lines
    assert lines.index(f"cp runs/finetune_curve/results.json {curve}") < len(lines) - 1  # before report-loro
    assert lines[-1].endswith(f"--finetune-curve {curve}")
    parser = build_parser()
    for line in train_commands("```\n" + "\n".join(lines) + "\n```\n"):
        parser.parse_args(shlex.split(line)[2:])
    bare = reproduce_lines(_args(), scored, None, None)
    assert not any("--only" in line or "finetune" in line for line in bare)
