"""Fixtures for runtime tests (helpers live in tests/runtime_helpers.py, importable via pytest.ini)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import S1_SAMPLE, make_model, s1_spec, s2_spec


@pytest.fixture(scope="session")
def threshold_model(tmp_path_factory) -> Path:
    """S1 model answering 'water' exactly where VH < -20 dB."""
    return make_model(tmp_path_factory.mktemp("models") / "vh_threshold.onnx", [s1_spec()])


@pytest.fixture(scope="session")
def fusion_model(tmp_path_factory) -> Path:
    """Two-input (S1 + S2) model; S1 decides, S2 must still be read and aligned."""
    return make_model(
        tmp_path_factory.mktemp("models") / "fusion.onnx", [s1_spec(), s2_spec()], name="fusion"
    )


@pytest.fixture(scope="session")
def s1_sample() -> Path:
    assert S1_SAMPLE.exists(), "bundled sample missing from resources/sample"
    return S1_SAMPLE
