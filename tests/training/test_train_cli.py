"""`contrasat train`: every kit and every former `python -m` entry is a command of the one parser, and bad
input to the new commands is one `contrasat: error:` line with exit code 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from contrasat.training.cli import build_parser
from contrasat.training.cli import main as train_main

# the commands that replaced `python -m contrasat.training.<module>` (issue 21), by kit
FORMER_MODULE_ENTRIES = {
    "flood": {"calibrate", "stress-build", "stress-score", "loro", "ship", "report-loro"},
    "contrastive": {"loro", "report-loro"},
    "finetune": {"study", "study-merge", "study-report"},
    "pimc": {"fixture"},
}


def _commands(kit: str) -> set[str]:
    kits = next(a for a in build_parser()._subparsers._group_actions if a.dest == "kit")
    verbs = next(a for a in kits.choices[kit]._subparsers._group_actions if a.dest == "command")
    return set(verbs.choices)


@pytest.mark.parametrize("kit", sorted(FORMER_MODULE_ENTRIES))
def test_every_former_module_entry_is_a_train_command(kit: str) -> None:
    assert FORMER_MODULE_ENTRIES[kit] <= _commands(kit)


def test_finetune_is_a_kit_and_help_needs_no_torch() -> None:
    """Building the parser (all kits) imports no torch, so `contrasat train --help` works without it."""
    import subprocess
    import sys

    code = "import sys; from contrasat.training.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False" and "finetune" in _kits()


def _kits() -> set[str]:
    return set(next(a for a in build_parser()._subparsers._group_actions if a.dest == "kit").choices)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["flood", "loro", "--config", "/nonexistent.toml", "--out", "OUT"], "plan not found"),
        (
            ["flood", "ship", "--config", "/nonexistent.toml", "--recipe", "r", "--out", "OUT/m.onnx"],
            "plan not found",
        ),
        (["flood", "stress-score", "--model", "/nonexistent.onnx"], "model not found"),
        (
            ["flood", "lowcontrast-study", "--config", "/nonexistent.toml", "--out", "OUT"],
            "study config not found",
        ),
        (["flood", "lowcontrast-study", "--out", "OUT"], "stress figures not found"),
        (["contrastive", "loro", "--config", "/nonexistent.toml", "--out", "OUT"], "config file not found"),
        (["finetune", "study", "--out", "OUT", "--set", "nosuchkey=1"], "unknown recipe key"),
        (["finetune", "study", "--out", "OUT", "--base", "/nonexistent.onnx"], "model file not found"),
        (["finetune", "study", "--out", "OUT", "--base", "no_such_model"], "unknown model"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("contrasat: error:") and message in err[0]
    assert not (tmp_path / "out").exists()


def test_study_merge_refuses_parts_of_other_protocols(tmp_path: Path, capsys) -> None:
    parts = []
    for chip, steps in (("A", 200), ("B", 100)):
        path = tmp_path / f"{chip}.json"
        proto = {"chips": [chip], "seeds": [0], "recipe": {"steps": steps}}
        path.write_text(json.dumps({"protocol": proto, "runs": {}, "references": {}}))
        parts.append(str(path))
    assert train_main(["finetune", "study-merge", *parts, "--out", str(tmp_path / "m.json")]) == 2
    assert "protocol differs" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
