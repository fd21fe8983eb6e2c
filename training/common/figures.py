"""How results pages and model cards write a score: one format for every kit's pages and cards."""

from __future__ import annotations

import math


def format_score(x: float | None) -> str:
    """A score as a results page prints it: three decimals, a dash when undefined (None or NaN)."""
    return "—" if x is None or math.isnan(x) else f"{x:.3f}"


def round_score(x: float | None) -> float | None:
    """A score as a card or results file stores it: four decimals, None when undefined (JSON has no NaN)."""
    return None if x is None or math.isnan(x) else round(float(x), 4)
