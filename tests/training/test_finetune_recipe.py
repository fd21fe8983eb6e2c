"""The fine-tuning recipe's options: scene prior correction (EM, folded into the model) and distillation to
the start model on unlabelled pixels."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
import torch
from contrasat.models.card import read_card
from contrasat.models.registry import resolve_model
from contrasat.training.common.metrics import IGNORE
from contrasat.training.finetune.base_weights import load_base
from contrasat.training.finetune.job import FinetuneConfig, distill_loss, export, run_finetune
from contrasat.training.finetune.label_draw import draw_polygons, write_labels
from contrasat.training.finetune.prior import em_prior, shift_water_logit


def _posteriors(prior: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Exact posteriors under a 50 % prior for two unit Gaussians at -1 and +1, pixels drawn at `prior`."""
    water = rng.random(n) < prior
    z = rng.normal(np.where(water, 1.0, -1.0), 1.0)
    return 1 / (1 + np.exp(-2 * z))  # log-likelihood ratio of N(1,1) over N(-1,1) is 2z


@pytest.mark.parametrize("prior", [0.05, 0.3, 0.5])
def test_em_recovers_the_scene_water_share(prior):
    probs = _posteriors(prior, 200_000, np.random.default_rng(0))
    assert abs(em_prior(probs, 0.5) - prior) < 0.01
    assert abs(np.mean(probs > 0.5) - prior) > 0.05 or prior == 0.5  # the naive share is biased


def test_logit_shift_is_folded_into_the_exported_model(tmp_path):
    net, card = load_base(resolve_model("flood_s1_contrastive", "flood"))
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 2, 64, 64)).astype(np.float32))
    with torch.no_grad():
        before = net(x)
        shift_water_logit(net, -1.7)
        after = net(x)
    gap = (after[:, 1] - after[:, 0]) - (before[:, 1] - before[:, 0])
    assert torch.allclose(gap, torch.full_like(gap, -1.7), atol=1e-4)
    path = export(net, card, tmp_path / "shifted.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.max(np.abs(got - torch.softmax(after, dim=1).numpy())) < 1e-3


def test_distillation_is_zero_at_the_start_and_only_counts_unlabelled_scene_pixels():
    net, _ = load_base(resolve_model("flood_s1_contrastive", "flood"))
    teacher = copy.deepcopy(net).eval()
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(2, 2, 32, 32)).astype(np.float32))
    y = torch.full((2, 32, 32), IGNORE, dtype=torch.int64)
    with torch.no_grad():
        assert float(distill_loss(net(x), teacher, x, y)) < 1e-6
        shift_water_logit(net, 2.0)
        moved = float(distill_loss(net(x), teacher, x, y))
        assert moved > 1e-3
        labelled = torch.zeros_like(y)  # every pixel labelled: nothing to distil
        assert float(distill_loss(net(x), teacher, x, labelled)) == 0.0
        padded = x.clone()
        padded[:, :, :, 16:] = 0.0  # padding outside the scene is not scene data
        y_half = y.clone()
        y_half[:, :, :16] = 0
        assert float(distill_loss(net(padded), teacher, padded, y_half)) == 0.0


def test_finetune_with_prior_and_distillation_records_both(floods_root, tmp_path):
    s1 = floods_root / "S1Hand" / "Spain_7370579_S1Hand.tif"
    with rasterio.open(floods_root / "LabelHand" / "Spain_7370579_LabelHand.tif") as ds:
        label, transform, crs = ds.read(1), ds.transform, ds.crs
    labels = write_labels(
        draw_polygons(label, transform, 6, np.random.default_rng(5)), crs, tmp_path / "l.gpkg"
    )
    torch.set_num_threads(1)
    cfg = FinetuneConfig(steps=6, eval_every=3, batch=2, prior="scene", distill=1.0)
    result = run_finetune(None, [str(s1)], str(labels), str(tmp_path / "m.onnx"), cfg=cfg, curve=False)
    card = read_card(result.output)
    done = card.training["prior_correction"]
    water = float(np.mean(label[label >= 0] == 1))
    assert 0.0 < done["scene_water_share"] < 1.0 and np.isfinite(done["logit_shift"])
    assert abs(done["scene_water_share"] - water) < 0.25  # a share of this scene, not the polygons' 50 %
    assert card.training["recipe"]["distill"] == 1.0 and card.training["recipe"]["prior"] == "scene"
    assert any("water share of the scene" in n for n in result.notes)


def test_cli_recipe_flags_reach_the_card(floods_root, tmp_path, capsys):
    """`--distill` and `--prior` override the default recipe; without them the card records the default."""
    from contrasat.cli import main as cli_main

    s1 = floods_root / "S1Hand" / "Spain_7370579_S1Hand.tif"
    with rasterio.open(floods_root / "LabelHand" / "Spain_7370579_LabelHand.tif") as ds:
        drawn = draw_polygons(ds.read(1), ds.transform, 4, np.random.default_rng(7))
        labels = write_labels(drawn, ds.crs, tmp_path / "l.gpkg")
    base = ["finetune", "--raster", str(s1), "--labels", str(labels), "--steps", "4", "--progress", "none"]
    assert cli_main([*base, "--out", str(tmp_path / "a.onnx"), "--distill", "0", "--prior", "scene"]) == 0
    assert cli_main([*base, "--out", str(tmp_path / "b.onnx")]) == 0
    capsys.readouterr()
    a, b = (read_card(tmp_path / n).training for n in ("a.onnx", "b.onnx"))
    assert (a["recipe"]["distill"], a["recipe"]["prior"]) == (0.0, "scene") and "prior_correction" in a
    assert b["recipe"]["distill"] == FinetuneConfig().distill and "prior_correction" not in b
