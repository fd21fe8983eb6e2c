"""Flood kit: S1 flood mapping, its data sources, stress sets and leave-one-region-out evaluation."""
