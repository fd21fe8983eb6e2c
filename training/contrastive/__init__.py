"""Multimodal contrastive pre-training kit: paired S1/S2 data, dual encoders, losses, loops, experiment.

Wilson, Jain & Gulshan (arXiv 2209.02329): an S1 chip and the S2 chip of the same place are a positive pair.
Entry point: training/contrastive/cli.py (`contrasat train contrastive ...`).
"""
