"""Labelled flood data every kit reads: Sen1Floods11 chips, ETCI 2021 and OMBRIA, as calibrated S1 dB regions.

Here rather than in the flood kit because the contrastive kit pre-trains and scores on the same regions and
kits import only training/common (docs/architecture.md).
"""
