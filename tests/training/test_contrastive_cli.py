"""The `contrasat train contrastive` entry point: pre-train, fine-tune + export, evaluate, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from contrasat.models.card import read_card
from contrasat.training.cli import main as train_main
from contrastive_helpers import floods_root, terramind_root

TINY = """
[pretrain]
method = "multimodal"
sources = ["terramind"]
exclude = []
steps = 2
batch = 4
crop = 32
width = 8
proj_dim = 8
ckpt_every = 2

[finetune]
task = "landcover_s2"
steps = 2
batch = 4
crop = 32
width = 8
"""


def main(argv: list[str]) -> int:
    """`contrasat train contrastive ...`"""
    return train_main(["contrastive", *argv])


def test_pretrain_finetune_export_evaluate(tmp_path: Path, capsys) -> None:
    terramind_root()
    floods_root()  # random-init specs come from the default pool
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    assert main(["pretrain", "--config", str(cfg), "--out", str(tmp_path / "pt"), "--quiet"]) == 0
    assert (tmp_path / "pt" / "encoder.pt").is_file() and (tmp_path / "pt" / "curve.png").is_file()
    onnx_path = tmp_path / "lc.onnx"
    args = ["finetune", "--config", str(cfg), "--init", str(tmp_path / "pt"), "--mode", "frozen"]
    assert main([*args, "--out", str(tmp_path / "ft"), "--export", str(onnx_path), "--quiet"]) == 0
    card = read_card(onnx_path)
    assert card.task == "land_cover" and "miou" in card.metrics["heldout"]
    assert "282D_485L_3_3" in card.metrics["heldout"]["split"]
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path / "ft")]) == 0
    assert "miou" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--config", "/nonexistent.toml", "--out", "x"], "config file not found"),
        (["evaluate", "--run", "/nonexistent"], "no result.json"),
        (["export", "--out", "x.onnx"], "give --run DIR"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
