"""End to end on a tiny copy of three real chips: LOCO, report, export, and bad-input exit codes."""

import json

import pytest
import rasterio
from contrasat.models.card import read_card
from contrasat.training.cli import main as train_main

CHIPS = ("India_900498", "Nigeria_812045", "Spain_7370579")


@pytest.fixture()
def tiny_root(floods_root, tmp_path):
    """64x64 crops of three chips written as a Sen1Floods11-shaped folder."""
    root = tmp_path / "data"
    for kind in ("S1Hand", "LabelHand"):
        (root / "sen1floods11" / kind).mkdir(parents=True)
        for name in CHIPS:
            with rasterio.open(floods_root / kind / f"{name}_{kind}.tif") as src:
                data = src.read(window=((22, 86), (22, 86)))
                profile = {**src.profile, "width": 64, "height": 64, "tiled": False}
                profile.pop("blockxsize", None), profile.pop("blockysize", None)
            with rasterio.open(root / "sen1floods11" / kind / f"{name}_{kind}.tif", "w", **profile) as dst:
                dst.write(data)
    return root


def main(argv: list[str]) -> int:
    """`contrasat train flood ...`"""
    return train_main(["flood", *argv])


def test_flood_loco_writes_report_and_exports_shipped_fold(tiny_root, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps({"recipe": "tiny", "width": 4, "batch": 2, "eval_every": 2, "augment": {"crop": 32}})
    )
    out, onnx_path, report = tmp_path / "loco", tmp_path / "w" / "flood.onnx", tmp_path / "doc" / "flood.md"
    argv = ["loco", "--config", str(config), "--steps", "3", "--data", str(tiny_root), "--quiet"]
    argv += ["--out", str(out), "--export", str(onnx_path), "--report", str(report)]
    assert main(argv) == 0
    summary = json.loads((out / "loco.json").read_text())
    assert sorted(summary["per_chip"]) == sorted(CHIPS)
    card = read_card(onnx_path)
    assert card.metrics["heldout"]["chip"] == "Spain_7370579"
    assert "Spain_7370579" not in card.training["data"].split("trained on")[-1]
    assert set(card.metrics["loco"]["per_chip_water_iou"]) == set(CHIPS)
    text = report.read_text()
    assert "**pooled**" in text and "Spain_7370579" in text
    assert report.with_suffix(".png").is_file() and (out / "fold_Spain_7370579" / "curve.png").is_file()
    assert main(argv) == 0  # rerun reuses the saved folds (same config)


def test_bad_input_exits_2(tiny_root, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_root), "--holdout", "Atlantis_1", "--out", str(tmp_path)]) == 2
    assert "Atlantis_1" in capsys.readouterr().err
    assert main(["loco", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
