"""PIMC kit: recurrence-plot CNN pre-trained contrastively against S2 patches, then a pixel land-cover head.

Entry point: training/pimc/cli.py (`contrasat train pimc ...`).
"""
