"""CUDA asked for where it cannot run: the job falls back to the CPU and says so; provider options and batch."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from contrasat.models import session
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from runtime_helpers import expected_classes


@pytest.fixture(autouse=True)
def fresh_sessions():
    session._CACHE.clear()  # sessions are cached per settings; each test opens its own
    yield
    session._CACHE.clear()


def test_requested_cuda_falls_back_to_cpu_and_is_reported(tmp_path, threshold_model, s1_sample):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the fallback is tested with a faked GPU-less session below")
    out = tmp_path / "flood.tif"
    result = map_floods(s1_sample, out, model=threshold_model, config=Execution(provider="cuda", device_id=1))
    assert result.provider == "CPUExecutionProvider"
    assert any(
        "CUDA was requested but is unavailable" in n and "no CUDAExecutionProvider" in n for n in result.notes
    )
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(s1_sample))


def test_cuda_options_reach_onnxruntime_and_a_gpu_less_cuda_build_is_reported(monkeypatch, threshold_model):
    """A CUDA build on a machine without a usable GPU: ORT silently drops to the CPU; we must say so."""
    seen = {}
    real = ort.InferenceSession

    def fake_session(path, sess_options=None, providers=None):
        seen["providers"] = providers
        return real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    loaded = session.load_model(threshold_model, provider="cuda", device_id=3)
    assert seen["providers"] == [
        ("CUDAExecutionProvider", {"device_id": 3, "arena_extend_strategy": "kSameAsRequested"}),
        "CPUExecutionProvider",
    ]
    assert loaded.provider == "CPUExecutionProvider"
    assert "no usable GPU" in loaded.fallback
    # 'auto' asks for CUDA too when the build has it, but falling back is its documented behaviour
    assert session.load_model(threshold_model, provider="auto").fallback == ""
    assert seen["providers"][0][0] == "CUDAExecutionProvider"


def test_batch_size_zero_is_chosen_for_the_provider(tmp_path, monkeypatch, threshold_model, s1_sample):
    sizes = []
    run = session.LoadedModel.run

    def counting(self, feeds):
        sizes.append(next(iter(feeds.values())).shape[0])
        return run(self, feeds)

    monkeypatch.setattr(session.LoadedModel, "run", counting)
    config = Execution(tile=128, overlap=0, batch="auto", provider="cpu")
    map_floods(s1_sample, tmp_path / "flood.tif", model=threshold_model, config=config)
    assert max(sizes) == session.batch_for("CPUExecutionProvider") == 4
    assert sum(sizes) == 16
    assert session.batch_for("CUDAExecutionProvider") > session.batch_for("CPUExecutionProvider")
