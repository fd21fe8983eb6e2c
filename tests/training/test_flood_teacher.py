"""The LORO teacher cache, distillation on unlabelled S1 scenes, and their plan fields (recipe K)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from contrasat.models.preprocess import prepare
from contrasat.training.common.errors import UsageError
from contrasat.training.common.flood_data.sen1floods11 import Chip
from contrasat.training.flood import region_runs
from contrasat.training.flood.region_runs import Recipe

LEVEL = {"band": "VH", "reference_db": -16.2, "bound_db": 7.0}


def _data() -> dict[str, list[Chip]]:
    rng = np.random.default_rng(0)
    out = {}
    for name in ("a", "b"):
        s1 = np.stack([rng.normal(-10, 2, (48, 48)), rng.normal(-16, 3, (48, 48))]).astype(np.float32)
        out[name] = [Chip(name, s1, (s1[1] < -19).astype(np.int64))]
    return out


def _plan() -> dict[str, Recipe]:
    tiny = {"steps": 3, "batch": 2, "crop": 32, "width": 4, "level": LEVEL}
    plan = [
        Recipe(name="m1", net="resid", layers=1, **tiny),
        Recipe(name="m2", net="unet", layers=2, **tiny),
        Recipe(name="ens", net="ensemble", members=["m1", "m2"], level=LEVEL),
        Recipe(
            name="student", net="anchored", context=[4, 4, 4], pair=True, fuse=False, teacher="ens", **tiny
        ),
    ]
    return {r.name: r for r in plan}


def test_the_teacher_is_trained_once_then_loaded_from_its_cache(tmp_path, monkeypatch):
    calls = []
    real = region_runs.train
    monkeypatch.setattr(region_runs, "train", lambda r, *a, **k: calls.append(r.name) or real(r, *a, **k))
    plan, data, cache = _plan(), _data(), tmp_path / "teachers" / "ens" / "seed0" / "fold3.pt"

    first, _ = region_runs.train_recipe(plan["student"], plan, data, 0, cache)
    assert calls == ["m1", "m2", "student"] and cache.is_file()
    calls.clear()
    second, _ = region_runs.train_recipe(plan["student"], plan, data, 0, cache)
    assert calls == ["student"]  # the teacher came from the file
    x = torch.randn(1, 2, 32, 32)
    assert torch.equal(first(x), second(x))  # the same teacher, so the same student

    calls.clear()  # a file written on other regions is not used
    region_runs.train_recipe(plan["student"], plan, {"a": data["a"]}, 0, cache)
    assert calls == ["m1", "m2", "student"]


def test_unlabelled_scenes_are_distilled_on(monkeypatch):
    """With every labelled pixel dry and a teacher that calls unlabelled dark scenes water, the network
    learns water only when the unlabelled scenes enter training."""
    rng = np.random.default_rng(1)
    dark = [np.stack([rng.normal(-18, 1, (64, 64)), rng.normal(-26, 1, (64, 64))]).astype(np.float32)]
    monkeypatch.setattr(region_runs, "load_unlabelled", lambda sources: dark)

    class DarkIsWater(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = -8.0 * (x[:, 1:2] + 1.0)  # normalised VH well below its mean: water
            return torch.cat([-z, z], dim=1)

    labelled = {"a": [Chip("a", np.full((2, 64, 64), -12.0, np.float32), np.zeros((64, 64), np.int64))]}
    base = Recipe(name="s", net="anchored", context=[4, 4, 4], pair=True, fuse=False, steps=60, batch=4,
                  crop=32, lr=1e-2, gain_db=0.0, vv_dropout=0.0, noise_db=0.0, teacher="t")  # fmt: skip
    water = {}
    for sources in ([], ["terramind"]):
        net, spec = region_runs.train(
            dataclasses.replace(base, unlabelled=sources), labelled, 0, teacher=DarkIsWater()
        )
        x = torch.from_numpy(prepare(dark[0], spec)[None])
        with torch.no_grad():
            water[bool(sources)] = float((torch.softmax(net(x), 1)[:, 1] > 0.5).float().mean())
    assert water[True] > 0.9 and water[True] > water[False] + 0.3


def test_the_plan_refuses_unlabelled_data_without_a_teacher_or_an_unknown_source(tmp_path):
    head = 'folds = [["a"]]\n[[recipe]]\nname = "k"\n'
    for body in ('unlabelled = ["terramind"]\n', 'teacher = "x"\nunlabelled = ["nowhere"]\n'):
        path = tmp_path / "plan.toml"
        path.write_text(head + body, encoding="utf-8")
        with pytest.raises(UsageError, match="'k'"):
            region_runs.load_plan(path)


def test_fold_files_written_before_a_field_existed_still_match_their_recipe():
    recipe = Recipe(name="i", teacher="ens")
    saved = dataclasses.asdict(recipe)
    del saved["unlabelled"]
    assert region_runs.same_recipe(saved, recipe)
    assert not region_runs.same_recipe({**saved, "steps": 7}, recipe)
    assert region_runs.same_recipe({**saved, "seeds": [0]}, dataclasses.replace(recipe, seeds=[0, 1, 2]))


def test_unlabelled_sources_load_as_s1_db():
    """BigEarthNet (configilm's real patches) and TerraMind S1 come as [VV, VH] in dB, VH below VV."""
    from contrasat.training.common.flood_data.unlabelled import load_unlabelled

    for source in ("bigearthnet", "terramind"):
        scenes = load_unlabelled([source])
        assert scenes and all(s.ndim == 3 and s.shape[0] == 2 for s in scenes)
        vv, vh = (float(np.nanmedian(np.concatenate([s[b].ravel() for s in scenes]))) for b in (0, 1))
        assert -30 < vh < vv < 0, (source, vv, vh)  # dB, not linear power or 8-bit values
    with pytest.raises(ValueError, match="unknown unlabelled source"):
        load_unlabelled(["ombria_before"])
