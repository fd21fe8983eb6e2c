import numpy as np
import torch
from contrasat.models.preprocess import prepare
from contrasat.training.common.flood_data.sen1floods11 import IGNORE, band_stats, s1_spec
from contrasat.training.common.losses import flood_loss, water_weight
from contrasat.training.common.networks.unet import UNet
from contrasat.training.flood.config import FloodConfig
from contrasat.training.flood.evaluate import METHODS
from contrasat.training.flood.train import train_fold

from .conftest import crop


def test_loss_falls_on_a_real_chip_crop(india):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    spec = s1_spec(*band_stats([india]))
    patch = crop(india, 72, 72, 64)
    x = torch.from_numpy(prepare(patch.s1, spec))[None]
    y = torch.from_numpy(patch.label)[None]
    assert 0 < (y == 1).float().mean() < 1  # the crop holds both classes
    net = UNet(width=8)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = flood_loss(net(x), y, water_weight(0.4), dice=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])


def test_loss_ignores_nodata_labels():
    logits = torch.randn(1, 2, 4, 4)
    target = torch.randint(0, 2, (1, 4, 4))
    target[0, :2] = IGNORE
    changed = logits.clone()
    changed[0, :, :2] += 10.0  # only pixels with label -1 change
    assert torch.isclose(flood_loss(logits, target, 2.0, 0.5), flood_loss(changed, target, 2.0, 0.5))
    assert float(flood_loss(logits, torch.full_like(target, IGNORE), 2.0, 0.5)) == 0.0


def test_train_fold_scores_model_and_baselines_on_held_out_chip(floods_root):
    from contrasat.training.common.flood_data.sen1floods11 import load_chip

    chips = [crop(load_chip(n), 0, 0, 64) for n in ("India_900498", "Nigeria_812045", "Spain_7370579")]
    cfg = FloodConfig(steps=4, batch=2, eval_every=2, width=4)
    cfg.augment.crop = 32
    run = train_fold(cfg, chips, "Spain_7370579", progress=False)
    assert set(run.counts) == set(METHODS)
    n_valid = int(chips[2].valid.sum())
    for c in run.counts.values():
        assert c.tp + c.fp + c.fn + c.tn == n_valid  # same pixels for every method
    assert run.history["eval_step"] == [2, 4] and len(run.history["loss"]) == 4
    # normalisation statistics come from the two training chips only
    assert run.spec.mean == band_stats(chips[:2])[0]
