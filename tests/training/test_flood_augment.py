import numpy as np
from contrasat.training.common.augment import AugmentConfig, flip_rot, radiometric, random_crop, sample
from contrasat.training.common.flood_data.sen1floods11 import IGNORE, Chip


def _chip(rng, size=48) -> Chip:
    """A chip whose label is a function of VH, so any misalignment breaks the relation."""
    s1 = rng.normal(-18, 5, (2, size, size)).astype(np.float32)
    label = (s1[1] < -20).astype(np.int64)
    s1[:, :3, :5] = np.nan
    label[:3, :5] = IGNORE
    return Chip("toy", s1, label)


def test_geometric_ops_keep_image_and_label_aligned(rng):
    chip = _chip(rng)
    for _ in range(40):
        image, label = random_crop(chip, 24, rng, water_focus=0.5)
        image, label = flip_rot(image, label, rng)
        assert image.shape == (2, 24, 24) and label.shape == (24, 24)
        ok = label != IGNORE
        assert np.array_equal(label[ok] == 1, image[1][ok] < -20)
        assert np.all(np.isnan(image[1][~ok]))


def test_water_focused_crop_contains_water(rng):
    chip = _chip(rng)
    chip.label[:] = 0
    chip.label[40, 5] = 1
    image, label = random_crop(chip, 16, rng, water_focus=1.0)
    assert (label == 1).sum() == 1


def test_radiometric_ops_change_values_not_geometry(rng):
    image = _chip(rng).s1
    cfg = AugmentConfig(gain_db=2, vv_shift_db=0, vv_dropout=0, noise_db=0)
    out = radiometric(image, cfg, vv_fill=-10, rng=rng)
    shift = out - image
    finite = np.isfinite(image)
    assert np.array_equal(np.isnan(out), ~finite)
    assert np.allclose(shift[finite], shift[finite][0], atol=1e-4) and abs(shift[finite][0]) <= 2
    dropped = radiometric(image, AugmentConfig(vv_dropout=1.0), vv_fill=-10, rng=rng)
    assert np.all(dropped[0][finite[0]] == -10) and not np.all(dropped[1][finite[1]] == image[1][finite[1]])


def test_sample_marks_nodata_as_ignored(rng):
    chip = _chip(rng)
    for _ in range(20):
        image, label = sample(chip, AugmentConfig(crop=32, water_focus=0), -10.0, rng)
        assert np.array_equal(label == IGNORE, ~np.all(np.isfinite(image), axis=0))
