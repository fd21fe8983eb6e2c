"""training/common: the pieces every kit shares behave as the kits rely on."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from contrasat.training.cli import KITS, main
from contrasat.training.common import data_root as data_root_mod
from contrasat.training.common.config import from_dict, load, to_dict
from contrasat.training.common.losses import info_nce
from contrasat.training.common.runs import default_run_dir
from contrasat.training.common.schedule import FLOOR, scheduler, warmup_cosine
from contrasat.training.common.splits import TEST, TRAIN, VAL, leave_one_out, spatial_blocks
from hostile_cases import ids


def test_warmup_then_cosine_to_the_floor():
    factors = [warmup_cosine(s, warmup=4, total=20) for s in range(25)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))  # never rises after warm-up
    assert math.isclose(factors[20], FLOOR) and factors[24] == factors[20]  # held at the floor after the end
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = scheduler(opt, warmup=4, total=20)
    for _ in range(5):
        opt.step()
        sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 2.0 * warmup_cosine(5, 4, 20))


@dataclass
class Inner:
    size: int = 3
    looks: tuple[float, float] = (1.0, 2.0)


@dataclass
class Recipe:
    name: str = "a"
    steps: int = 10
    inner: Inner = field(default_factory=Inner)


def test_config_loader_builds_nested_tables_and_refuses_typos(tmp_path: Path):
    path = tmp_path / "r.toml"
    path.write_text('name = "b"\n[inner]\nlooks = [3.0, 4.0]\n\n[other]\nsteps = 5\n')
    with pytest.raises(ValueError, match="other"):
        load(Recipe, path)
    path.write_text('[mine]\nname = "b"\n[mine.inner]\nlooks = [3.0, 4.0]\n')
    cfg = load(Recipe, path, "mine")
    assert cfg == Recipe(name="b", inner=Inner(looks=(3.0, 4.0)))  # tuple, not list; defaults kept
    assert from_dict(Recipe, json.loads(json.dumps(to_dict(cfg)))) == cfg  # a run folder's copy reads back
    with pytest.raises(ValueError, match="sizes"):
        from_dict(Recipe, {"inner": {"sizes": 4}})


def test_leave_one_out_by_name_and_by_group():
    names = ["a1", "a2", "b1", "c1"]
    assert leave_one_out(names) == [(n, [n], [m for m in names if m != n]) for n in names]
    region = {"a1": "A", "a2": "A", "b1": "B", "c1": "C"}
    folds = leave_one_out(names, region, held_out=["C", "A"])
    assert folds == [("C", ["c1"], ["a1", "a2", "b1"]), ("A", ["a1", "a2"], ["b1", "c1"])]
    with pytest.raises(ValueError, match="Z"):
        leave_one_out(names, region, held_out=["Z"])


def test_spatial_blocks_put_remainders_in_the_last_block():
    split = spatial_blocks(11, 10, 5, val=[(0, 1)], test=[(1, 0)])
    assert split[:5, 5:].tolist() == np.full((5, 5), VAL).tolist()
    assert (split[5:, :5] == TEST).all() and split[5:, :5].shape == (6, 5)  # row 10 joins block row 1
    assert (split[:5, :5] == TRAIN).all() and (split[5:, 5:] == TRAIN).all()


def test_info_nce_with_a_learnt_scale_matches_the_clip_formula():
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=1)
    b = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=1)
    scale = torch.tensor(5.0, requires_grad=True)
    logits = scale * a @ b.t()
    target = torch.arange(6)
    clip = 0.5 * (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.t(), target)
    )
    got = info_nce(a, b, 1 / scale)
    assert torch.isclose(got, clip, atol=1e-5)
    got.backward()
    assert scale.grad is not None and scale.grad.abs() > 0  # the scale still learns


def test_data_root_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTRASAT_DATA", str(tmp_path))
    assert data_root_mod.data_root() == tmp_path
    monkeypatch.delenv("CONTRASAT_DATA")
    assert data_root_mod.data_root() == data_root_mod.REPO_ROOT.parent / "shared" / "data"
    assert (data_root_mod.REPO_ROOT / "training" / "common" / "data_root.py").is_file()


def test_runs_default_to_a_fresh_folder_under_the_current_directory():
    path = default_run_dir("flood", "loco")
    assert not path.is_absolute() and path.parts[:2] == ("runs", "flood") and path.name.startswith("loco-")


def test_train_help_lists_every_kit(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert set(KITS) == {"flood", "contrastive", "pimc", "landcover", "finetune", "ownclasses"} and all(
        kit in out for kit in KITS
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "KIT"),
        (["nokit"], "invalid choice"),
        (["flood", "train", "--steps", "x"], "--steps"),
        (["flood", "threshold", "--loco", "/nonexistent.json", "--out", "t.onnx"], "no such loco.json"),
        (["pimc", "report"], "runs"),
    ],
)
def test_errors_are_one_line_with_exit_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as done:
        code = done.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("contrasat: error: ") and message in err[0], err


def test_macro_f1_averages_classes_present_in_the_truth():
    from contrasat.training.common.metrics import macro_f1

    true = np.array([0, 0, 1, 1, 2, 2])
    assert macro_f1(true, true, 4) == 1.0  # class 3 is absent from the truth: not averaged in
    pred = np.array([0, 1, 1, 1, 2, 2])  # class 0: F1 2/3, class 1: 0.8, class 2: 1
    assert macro_f1(pred, true, 3) == pytest.approx((2 / 3 + 0.8 + 1) / 3)


def _bad_recipe(case: str, folder: Path) -> tuple[list[str], str]:
    """The command line of one hostile training case and the words its one-line error must hold."""
    if case == "config-steps-text":
        (folder / "r.toml").write_text('steps = "abc"\n')
        return [
            "flood",
            "train",
            "--config",
            str(folder / "r.toml"),
        ], "steps: Input should be a valid integer"
    if case == "config-steps-fraction":
        (folder / "r.toml").write_text("steps = 1.5\n")
        return [
            "flood",
            "train",
            "--config",
            str(folder / "r.toml"),
        ], "steps: Input should be a valid integer"
    if case == "config-batch-zero":
        (folder / "r.toml").write_text("[pretrain]\nbatch = 0\n")
        argv = ["contrastive", "pretrain", "--config", str(folder / "r.toml"), "--out", str(folder / "o")]
        return argv, "batch: Input should be greater"
    if case == "plan-steps-text":
        plan = (Path(__file__).resolve().parents[2] / "training" / "configs" / "flood_loro.toml").read_text(
            encoding="utf-8"
        )
        (folder / "plan.toml").write_text(plan.replace("steps = ", 'steps = "abc" # ', 1), encoding="utf-8")
        return [
            "flood",
            "loro",
            "--config",
            str(folder / "plan.toml"),
            "--out",
            str(folder / "o"),
        ], "recipe '"
    if case == "steps-flag-zero":
        return ["flood", "train", "--steps", "0"], "must be 1 or more"
    raise AssertionError(f"no builder for case {case}")


@pytest.mark.parametrize("case", ids("training"))
def test_hostile_training_recipes(case, tmp_path, capsys):
    argv, needle = _bad_recipe(case, tmp_path)
    try:
        code = main(argv)
    except SystemExit as done:
        code = done.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("contrasat: error: ") and needle in err[0], err
    assert not (tmp_path / "o").exists()
