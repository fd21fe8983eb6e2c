"""ONNX Runtime sessions: CUDA first when it is really usable, CPU otherwise, and the provider in use reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .card import ModelCard, read_card
from .errors import ModelError


def usable_providers() -> list[str]:
    """Execution providers worth asking for, best first (CUDA only when this onnxruntime build has it)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return wanted or ["CPUExecutionProvider"]


@dataclass
class LoadedModel:
    """An inference session together with its card; `provider` is the one ONNX Runtime actually chose."""

    path: Path
    card: ModelCard
    session: object
    provider: str
    fallback: str = ""  # set when CUDA was asked for but the session runs on the CPU: say so to the user

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities (N, C, H, W) for a batch of prepared inputs keyed by card input name."""
        return self.session.run(None, feeds)[0]


# Tiles per batch when the caller leaves it to the provider: a GPU wants large batches to stay busy; on
# the CPU a larger batch only adds memory (throughput is flat beyond a few 256-px tiles).
BATCH_FOR_PROVIDER = {"CUDAExecutionProvider": 16, "CPUExecutionProvider": 4}


def batch_for(provider: str) -> int:
    """Default tiles per inference batch for the provider in use."""
    return BATCH_FOR_PROVIDER.get(provider, 4)


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_SIZE = 4


def load_model(path: str | Path, provider: str = "auto", threads: int = 0, device_id: int = 0) -> LoadedModel:
    """Open an ONNX model with its card. `provider`: 'auto', 'cuda' or 'cpu'; `threads` 0 lets ORT decide;
    `device_id`: the GPU CUDA runs on. CUDA asked for but unusable falls back to the CPU (`fallback` says so).

    Sessions are cached by file, modification time and settings: an analyst mapping scene after scene
    in QGIS pays for graph optimisation once, and a replaced file is reloaded.
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"model file not found: {path}") from exc
    key = (str(path), stat.st_mtime_ns, stat.st_size, provider, threads, device_id)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _open_session(path, provider, threads, device_id)
    return _CACHE[key]


def cuda_options(device_id: int = 0) -> dict[str, object]:
    """CUDA provider options: the GPU to use, and an arena that grows by what is asked (not by doubling),
    so several workers can share one GPU's memory."""
    return {"device_id": device_id, "arena_extend_strategy": "kSameAsRequested"}


def _open_session(path: Path, provider: str, threads: int, device_id: int = 0) -> LoadedModel:
    import onnxruntime as ort

    card = read_card(path)
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if provider == "cpu":
        providers = ["CPUExecutionProvider"]
    elif provider == "cuda" or has_cuda:
        providers = [("CUDAExecutionProvider", cuda_options(device_id)), "CPUExecutionProvider"]
        providers = providers if has_cuda else providers[1:]
    else:
        providers = usable_providers()
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # a missing CUDA library is reported by `provider`, not by log spam
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        raise ModelError(f"ONNX Runtime cannot load {path.name}: {str(exc).splitlines()[0][:200]}") from exc
    names = [i.name for i in session.get_inputs()]
    missing = [s.name for s in card.inputs if s.name not in names]
    if missing:
        raise ModelError(f"model card names inputs the network does not have: {', '.join(missing)}")
    used = session.get_providers()[0]
    fallback = ""
    if provider == "cuda" and used != "CUDAExecutionProvider":
        why = (
            "no usable GPU or CUDA libraries" if has_cuda else "this onnxruntime has no CUDAExecutionProvider"
        )
        fallback = f"CUDA was requested but is unavailable ({why}): running on {used}"
    return LoadedModel(path=path, card=card, session=session, provider=used, fallback=fallback)
