"""Leave-one-region-out (LORO) over the labelled flood regions, the protocol two kits run.

The flood kit trains its recipes under it and the contrastive kit its pre-trained encoders; both read the
same plan (training/configs/flood_loro.toml), train with the same region-balanced loop and augmentation,
score with the same code next to the same baselines, and write and read the same per-fold results.
"""
