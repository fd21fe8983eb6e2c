"""The contrastive losses against hand-written references, over batch sizes and temperatures."""

from __future__ import annotations

import math

import pytest
import torch
from contrasat.training.common.losses import info_nce, nt_xent


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def reference_info_nce(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """Loop-by-loop symmetric InfoNCE: -log softmax of the matching pair, both directions, averaged."""
    n = z1.shape[0]
    total = 0.0
    for i in range(n):
        s12 = [math.exp(_cos(z1[i], z2[j]) / t) for j in range(n)]
        s21 = [math.exp(_cos(z2[i], z1[j]) / t) for j in range(n)]
        total += -math.log(s12[i] / sum(s12)) - math.log(s21[i] / sum(s21))
    return total / (2 * n)


def reference_nt_xent(za: torch.Tensor, zb: torch.Tensor, t: float) -> float:
    """SimCLR eq. 1 over all 2N views: positive = twin view, denominator = every other view."""
    views = list(za) + list(zb)
    n = za.shape[0]
    total = 0.0
    for i, v in enumerate(views):
        twin = i + n if i < n else i - n
        denom = sum(math.exp(_cos(v, w) / t) for k, w in enumerate(views) if k != i)
        total += -math.log(math.exp(_cos(v, views[twin]) / t) / denom)
    return total / (2 * n)


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5, 1.0])
def test_info_nce_matches_reference(batch: int, temperature: float) -> None:
    gen = torch.Generator().manual_seed(batch * 100 + int(temperature * 100))
    z1, z2 = (
        torch.randn(batch, 8, generator=gen, dtype=torch.float64),
        torch.randn(batch, 8, generator=gen, dtype=torch.float64),
    )
    assert float(info_nce(z1, z2, temperature)) == pytest.approx(
        reference_info_nce(z1, z2, temperature), rel=1e-9
    )


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5, 1.0])
def test_nt_xent_matches_reference(batch: int, temperature: float) -> None:
    gen = torch.Generator().manual_seed(7 + batch * 100 + int(temperature * 100))
    za, zb = (
        torch.randn(batch, 8, generator=gen, dtype=torch.float64),
        torch.randn(batch, 8, generator=gen, dtype=torch.float64),
    )
    assert float(nt_xent(za, zb, temperature)) == pytest.approx(
        reference_nt_xent(za, zb, temperature), rel=1e-9
    )


def test_matched_pairs_score_lower_than_shuffled() -> None:
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(12, 16, generator=gen)
    noisy = z + 0.1 * torch.randn(12, 16, generator=gen)
    shuffled = noisy[torch.roll(torch.arange(12), 1)]
    assert float(info_nce(z, noisy, 0.1)) < float(info_nce(z, shuffled, 0.1))
    assert float(info_nce(z, noisy, 0.1)) < math.log(12) < float(info_nce(z, shuffled, 0.1))
