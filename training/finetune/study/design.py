"""The study's design, fixed before its runs: target chips, polygon counts, seeds, starts and models.

Free of torch, so that `contrasat train finetune --help` can show the defaults in a runtime-only install.
"""

CHIPS = ("Bolivia_312675", "Spain_7370579")
COUNTS = (2, 5, 10, 20)
SEEDS = (0, 1, 2)
INITS = ("base", "simclr", "random")
BASE = "flood_s1_contrastive"
SIMCLR = "flood_s1_simclr"  # built by the study (simclr_model), never bundled
REFERENCES = (BASE, "flood_vh_threshold")
