"""CUDA asked for where it cannot run: one error and nothing written, never a silent CPU run; 'auto' takes
CUDA when present and the CPU otherwise; provider options and batch. The engine's providers are faked (no GPU
was available to run these on CUDA)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models import session
from contrasat.models.errors import InputError
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from runtime_helpers import expected_classes

CPU_ONLY = ["CPUExecutionProvider"]
GPU_BUILD = ["CUDAExecutionProvider", "CPUExecutionProvider"]  # onnxruntime-gpu: CUDA listed


@pytest.fixture(autouse=True)
def fresh_sessions():
    session._CACHE.clear()  # sessions are cached per settings; each test opens its own
    yield
    session._CACHE.clear()


def fake_engine(monkeypatch, providers: list[str], cuda_runs: bool) -> dict:
    """This onnxruntime as a build listing `providers`, whose sessions run on CUDA only when `cuda_runs`
    (a GPU build on a machine without a usable GPU: ONNX Runtime silently drops to the CPU). Returns what
    the last session was asked for."""
    seen: dict = {}
    real = ort.InferenceSession

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None):
            seen["providers"] = providers
            self._real = real(path, sess_options=sess_options, providers=CPU_ONLY)

        def get_providers(self):
            return ["CUDAExecutionProvider", *CPU_ONLY] if cuda_runs else CPU_ONLY

        def __getattr__(self, name):
            return getattr(self._real, name)

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(providers))
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    return seen


@pytest.mark.parametrize(
    ("providers", "why"),
    [(CPU_ONLY, "this onnxruntime has no CUDAExecutionProvider"), (GPU_BUILD, "no usable NVIDIA GPU")],
)
def test_cuda_on_an_engine_without_it_is_one_cli_error_and_nothing_written(
    tmp_path, monkeypatch, capsys, threshold_model, s1_sample, providers, why
):
    fake_engine(monkeypatch, providers, cuda_runs=False)
    maps = tmp_path / "maps"
    maps.mkdir()
    code = main(["map-floods", "--s1", str(s1_sample), "--model", str(threshold_model), "--out",
                 str(maps / "flood.tif"), "--polygons", str(maps / "w.gpkg"), "--provider", "cuda"])  # fmt: skip
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("contrasat: error: CUDA is not available in this engine (") and why in line
    assert "install the GPU engine (onnxruntime-gpu" in line and "choose --provider cpu or auto" in line
    assert list(maps.iterdir()) == []


@pytest.mark.parametrize(("providers", "cuda_runs", "used"), [
    (CPU_ONLY, False, "CPUExecutionProvider"),
    (GPU_BUILD, False, "CPUExecutionProvider"),  # listed but not usable: auto runs on the CPU, no error
    (GPU_BUILD, True, "CUDAExecutionProvider"),
])  # fmt: skip
def test_auto_takes_cuda_when_present_and_the_cpu_otherwise(
    tmp_path, monkeypatch, threshold_model, s1_sample, providers, cuda_runs, used
):
    seen = fake_engine(monkeypatch, providers, cuda_runs)
    out = tmp_path / "flood.tif"
    result = map_floods(s1_sample, out, model=threshold_model, config=Execution(provider="auto"))
    asked = [p[0] if isinstance(p, tuple) else p for p in seen["providers"]]
    assert asked == ([*GPU_BUILD] if "CUDAExecutionProvider" in providers else CPU_ONLY)
    assert result.provider == used and not [n for n in result.notes if "CUDA" in n]
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(s1_sample))


def test_cuda_runs_where_it_is_usable_with_its_options(tmp_path, monkeypatch, threshold_model, s1_sample):
    seen = fake_engine(monkeypatch, GPU_BUILD, cuda_runs=True)
    config = Execution(provider="cuda", device_id=3)
    result = map_floods(s1_sample, tmp_path / "flood.tif", model=threshold_model, config=config)
    assert seen["providers"] == [
        ("CUDAExecutionProvider", {"device_id": 3, "arena_extend_strategy": "kSameAsRequested"}),
        "CPUExecutionProvider",
    ]
    assert result.provider == "CUDAExecutionProvider"


def test_the_session_refuses_before_loading_when_the_build_has_no_cuda(monkeypatch, threshold_model):
    seen = fake_engine(monkeypatch, CPU_ONLY, cuda_runs=False)
    with pytest.raises(InputError, match="no CUDAExecutionProvider"):
        session.load_model(threshold_model, provider="cuda")
    assert seen == {}, "no session was opened"
    assert session.load_model(threshold_model, provider="cpu").provider == "CPUExecutionProvider"


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


def test_auto_batches_hold_the_pixels_of_four_256_px_tiles_on_the_cpu():
    """A 512-px network at four tiles a batch held ~350 MiB more ORT arena than at one, for the same speed
    and the same outputs (bench/overhead.py); smaller tiles keep the provider's tile count."""
    cpu, cuda = "CPUExecutionProvider", "CUDAExecutionProvider"
    assert [session.batch_for(cpu, t) for t in (128, 256, 384, 512, 1024)] == [4, 4, 1, 1, 1]
    assert [session.batch_for(cuda, t) for t in (256, 512, 1024)] == [16, 4, 1]
    assert Execution(batch="auto").batch_for(cpu, 512) == 1
    assert Execution(batch=4).batch_for(cpu, 512) == 4  # a number given is kept whatever the tile
    assert Execution().batch_for(cpu, 512) == 4  # the default is 4 tiles, as before


def test_a_cpu_session_runs_without_the_memory_pattern_and_answers_the_same(s1_sample):
    """The memory pattern only costs memory on the CPU: a session without it gives the same bits."""
    from contrasat.models.preprocess import prepare
    from contrasat.models.registry import default_model_path

    path = default_model_path("flood")
    loaded = session.load_model(path, provider="cpu")
    assert loaded.session.get_session_options().enable_mem_pattern is False
    with rasterio.open(s1_sample) as src:
        x = prepare(src.read([1, 2], window=rasterio.windows.Window(0, 0, 256, 256)), loaded.card.inputs[0])
    feeds = {loaded.card.inputs[0].name: np.stack([x, x[:, ::-1]]).copy()}
    patterned = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert patterned.get_session_options().enable_mem_pattern is True
    assert np.array_equal(loaded.run(feeds), patterned.run(None, feeds)[0])
