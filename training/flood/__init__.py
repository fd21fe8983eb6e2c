"""Flood kit: a small S1 U-Net on Sen1Floods11 hand-labelled chips, leave-one-chip-out, threshold baselines.

Entry point: training/flood/cli.py (`contrasat train flood ...`).
"""
