"""The bundled land-cover models: the default carries (and wins) the fair leave-one-site-out comparison; the
per-pixel model runs through the runtime on the bundled sample and beats painting a real labelled site with
its own most common class.

The labelled windows are tests/fixtures/data/terramind (real TerraMind sites, credited in the README there).
The model was fitted on pixels of these sites, so this guards the runtime path and the export, not
generalisation (that is the leave-one-site-out figure in the card and in docs/results/landcover.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.card import read_card
from contrasat.models.pipeline import land_cover
from contrasat.models.registry import default_model_path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_S2 = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"
TERRAMIND = REPO / "tests" / "fixtures" / "data" / "terramind"


def _miou(pred: np.ndarray, label: np.ndarray) -> float:
    keep = label > 0
    p, t = pred[keep], label[keep]
    ious = [np.sum((p == c) & (t == c)) / np.sum((p == c) | (t == c)) for c in np.unique(t)]
    return float(np.mean(ious))


PIXEL = default_model_path("land_cover").with_name("landcover_s2_pixel.onnx")


def test_default_wins_on_the_sites_it_never_saw():
    """The default's card carries the fair comparison of the leave-one-site-out run, and the default wins it."""
    path = default_model_path("land_cover")
    card = read_card(path)
    assert path.name == "landcover_s2.onnx" and card.task == "land_cover"
    unseen = card.metrics["unseen_sites"]
    assert unseen["pooled_miou"] > unseen["majority_of_training_sites_pooled_miou"]
    assert unseen["pooled_miou"] >= unseen["best_per_pixel_pooled_miou"]
    assert "433D_629L_3_1" in unseen["split"] and "three" not in card.description


def test_default_card_leads_with_its_sites_and_held_out_figure():
    """Issue 18: one line first says how many sites trained it and its held-out figure, against each site's
    own majority class, and points to the analyst's own classes."""
    card = read_card(default_model_path("land_cover"))
    lead = card.description.split(". For your own classes")[0]
    unseen = card.metrics["unseen_sites"]
    n_sites = len(unseen["split"].split("fitted on the labels of ")[1].split(";")[0].split(", "))
    assert lead.startswith(f"Fixed classes, trained on the labels of {n_sites} site")
    assert f"pooled mIoU {unseen['pooled_miou']:.2f}" in lead
    assert f"{unseen['pooled_miou_all_methods']['aoi_majority']:.2f} for painting each site" in lead
    assert card.description.count("(My classes)") == 1


def test_per_pixel_model_card_records_leave_one_site_out():
    card = read_card(PIXEL)
    assert card.metrics["loso"]["pooled_miou"] > card.metrics["loso"]["pooled_miou_all_methods"]["majority"]
    assert card.metrics["loso"]["seeds"] >= 3
    assert PIXEL.stat().st_size < 5_000_000


def test_runs_on_bundled_sample(tmp_path):
    out = tmp_path / "lc.tif"
    land_cover(SAMPLE_S2, out, model=PIXEL)
    with rasterio.open(SAMPLE_S2) as src, rasterio.open(out) as ds:
        lc = ds.read(1)
        valid = np.all(src.read() != 0, axis=0)
    assert lc.shape == valid.shape
    assert set(np.unique(lc[valid])) <= set(range(1, 10))  # a class (never "no data") on every valid pixel
    assert len(np.unique(lc[valid])) >= 2
    assert (lc[~valid] == 255).all()


@pytest.mark.parametrize("site", ["282D_485L_3_3", "38D_378R_2_3", "433D_629L_3_1"])
def test_beats_painting_the_site_with_its_majority_class(site, tmp_path):
    out = tmp_path / f"{site}.tif"
    land_cover(TERRAMIND / "S2L1C" / f"{site}.tif", out, model=PIXEL)
    with rasterio.open(out) as ds:
        pred = ds.read(1)
    with rasterio.open(TERRAMIND / "LULC" / f"{site}.tif") as ds:
        label = ds.read(1)
    majority = np.full_like(label, np.bincount(label[label > 0]).argmax())
    assert _miou(pred, label) > _miou(majority, label) + 0.1
