"""The one-network flood model (networks/anchored.py): the VH rule at initialisation, any tile size, the
pair's output is the mean of its members, and an exported file loads back for `contrasat finetune`."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from contrasat.models.card import InputSpec, read_card, write_card
from contrasat.models.errors import ModelError
from contrasat.training.common.export import export_s1_net
from contrasat.training.common.networks.anchored import AnchoredContext, network_entry
from contrasat.training.finetune.base_weights import _check, load_base, random_like
from contrasat.training.finetune.base_weights import network_entry as card_network
from contrasat.training.finetune.prior import shift_water_logit
from contrasat.training.flood.region_runs import Recipe
from contrasat.training.flood.ship import card_for

MEAN, STD = [-10.7, -17.7], [3.5, 3.8]
KINDS = [
    {"pair": False, "fuse": True},
    {"pair": True, "fuse": False},
    {"pair": True, "fuse": False, "anchor_context": True},
]


def _x(h: int = 40, w: int = 56, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 2, h, w, generator=torch.Generator().manual_seed(seed)) * 1.5


def _perturbed(net: AnchoredContext, seed: int = 1) -> AnchoredContext:
    """Every weight random, the zero-initialised heads included (a trained network, as far as loading goes)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    return net.eval()


@pytest.mark.parametrize("kind", KINDS)
def test_at_initialisation_the_network_is_the_vh_rule(kind):
    net = AnchoredContext(MEAN, STD, **kind).eval()
    x = _x()
    with torch.no_grad():
        water = torch.softmax(net(x), dim=1)[:, 1].numpy() > 0.5
    vh_db = x[:, 1].numpy() * STD[1] + MEAN[1]
    assert water.shape == vh_db.shape
    assert np.array_equal(water, vh_db < -20.0)


@pytest.mark.parametrize("kind", KINDS)
def test_any_tile_size_and_the_pair_averages_its_members(kind):
    net = _perturbed(AnchoredContext(MEAN, STD, **kind))
    x = _x(37, 53)
    with torch.no_grad():
        p = torch.softmax(net(x), dim=1)[:, 1]
        members = [torch.softmax(m, dim=1)[:, 1] for m in net.member_logits(x)]
    assert p.shape == (2, 37, 53)
    with torch.no_grad():  # what the exporter writes instead of a softmax over channels
        assert torch.allclose(net.probabilities(x)[:, 1], p, atol=1e-5)
        assert torch.allclose(net.probabilities(x).sum(1), torch.ones_like(p))
    assert len(members) == (2 if kind["pair"] else 1)
    assert torch.allclose(p, torch.stack(members).mean(0), atol=1e-5)
    if kind["pair"]:
        assert not torch.allclose(members[0], members[1], atol=1e-2)  # two members that differ


def _export(net: AnchoredContext, path):
    spec = InputSpec(name="s1", sensor="S1", bands=["VV", "VH"], units="dB", mean=MEAN, std=STD,
                     clip=[-50.0, 5.0], nodata="nan_or_dataset_nodata")  # fmt: skip
    recipe = Recipe(name="t", net="anchored", context=net.config["context"])
    card = card_for("flood_t", spec, recipe, None, None, None, 0, None, ["r"], network_entry(net))
    export_s1_net(net, card, path, tile=64)
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_an_exported_network_loads_back_exactly_for_finetune(kind, tmp_path):
    path = _export(_perturbed(AnchoredContext(MEAN, STD, **kind)), tmp_path / "a.onnx")
    net, card = load_base(path)
    assert net.kind == "anchored" and card.training["network"]["pair"] is kind["pair"]
    assert _check(path, net) < 1e-5
    assert net.encoder_parameters() and len(net.encoder_parameters()) < len(list(net.parameters()))
    fresh = random_like(net, 0)  # the study's random start: same network, the VH rule again
    assert fresh.kind == "anchored" and fresh.net.config == net.net.config
    x = _x()
    with torch.no_grad():
        before = torch.softmax(net(x), dim=1)[:, 1]
        shift_water_logit(net, 1.0)  # the prior correction moves p(water) up everywhere
        after = torch.softmax(net(x), dim=1)[:, 1]
    assert bool((after >= before).all()) and float((after > before).float().mean()) > 0.9


def test_a_finetuned_card_still_names_its_network_and_a_wrong_entry_is_refused(tmp_path):
    path = _export(_perturbed(AnchoredContext(MEAN, STD)), tmp_path / "a.onnx")
    card = read_card(path)
    nested = copy.deepcopy(card)  # how a fine-tune's card keeps its base's training record
    nested.training = {"method": "fine-tuned", "base_model": {"name": "a", "training": card.training}}
    assert card_network(nested) == card.training["network"]
    bad = copy.deepcopy(card)
    bad.training["network"] = {**card.training["network"], "width": 12}
    write_card(path, bad)
    with pytest.raises(ModelError, match="shape"):
        load_base(path)


def test_finetune_from_an_anchored_base_with_a_level_rule_lets_labels_move_the_threshold(
    floods_root, tmp_path
):
    """`contrasat finetune --base` on the one-network model: it loads, reads rasters with its level rule,
    trains, and the water the analyst labels wins over the start model's (distillation on) prior."""
    import rasterio
    from contrasat.cli import main as cli_main
    from contrasat.training.finetune.label_draw import draw_polygons, write_labels

    s1 = floods_root / "S1Hand" / "Spain_7370579_S1Hand.tif"
    with rasterio.open(floods_root / "LabelHand" / "Spain_7370579_LabelHand.tif") as ds:
        label, transform, crs = ds.read(1), ds.transform, ds.crs
    net = AnchoredContext(MEAN, STD, pair=True, fuse=False).eval()
    with torch.no_grad():
        net.threshold.fill_(-30.0)  # a start that calls almost nothing water: the labels must correct it
    base = _export(net, tmp_path / "base.onnx")
    card = read_card(base)
    card.inputs[0].level = {"band": "VH", "reference_db": -16.2, "bound_db": 7.0}
    write_card(base, card)
    labels = write_labels(
        draw_polygons(label, transform, 8, np.random.default_rng(3)), crs, tmp_path / "l.geojson"
    )
    out = tmp_path / "mine.onnx"
    torch.set_num_threads(1)
    code = cli_main(["finetune", "--base", str(base), "--raster", str(s1), "--labels", str(labels),
                     "--out", str(out), "--steps", "60", "--progress", "none"])  # fmt: skip
    assert code == 0 and out.is_file()
    tuned = read_card(out)
    assert tuned.training["base_model"]["training"]["network"]["pair"] is True
    assert tuned.inputs[0].level == card.inputs[0].level
    iou = tuned.metrics["user_labels"]["water_iou"]
    assert iou["finetuned"] > iou["base"] + 0.1
    again, _ = load_base(out)  # a fine-tuned model is itself fine-tunable
    assert again.kind == "anchored"


def test_distillation_pulls_the_network_towards_the_teacher_where_labels_say_nothing():
    """The LORO loop's distillation term (Recipe.teacher): with every label ignored, only the teacher's
    p(water) teaches; the trained network then agrees with a teacher that calls everything water."""
    from contrasat.training.common.flood_data.sen1floods11 import Chip
    from contrasat.training.common.loro.training import train_region_balanced
    from contrasat.training.flood.region_runs import Recipe as R

    class AllWater(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = torch.full_like(x[:, :1], 4.0)
            return torch.cat([-z, z], dim=1)

    rng = np.random.default_rng(0)
    s1 = np.stack([rng.normal(-10, 2, (64, 64)), rng.normal(-16, 2, (64, 64))]).astype(np.float32)
    data = {"r": [Chip("c", s1, np.full((64, 64), -1, np.int64))]}
    spec = InputSpec(name="s1", sensor="S1", bands=["VV", "VH"], units="dB", mean=MEAN, std=STD,
                     clip=[-50.0, 5.0], nodata="nan_or_dataset_nodata")  # fmt: skip
    recipe = R(name="t", crop=32, gain_db=0.0, vv_dropout=0.0, noise_db=0.0)
    net = AnchoredContext(MEAN, STD, pair=True, fuse=False)
    groups = [{"params": list(net.parameters()), "lr": 1e-2}]
    train_region_balanced(net, groups, data, recipe, spec, 40, 4, 0.0, rng, teacher=AllWater(), distill=1.0)
    from contrasat.models.preprocess import prepare

    with torch.no_grad():
        p = net.probabilities(torch.from_numpy(prepare(s1, spec)[None]))[:, 1]
    assert float((p > 0.5).float().mean()) > 0.95  # at -16 dB VH the rule alone says dry everywhere
