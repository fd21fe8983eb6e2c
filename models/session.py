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

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities (N, C, H, W) for a batch of prepared inputs keyed by card input name."""
        return self.session.run(None, feeds)[0]


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_SIZE = 4


def load_model(path: str | Path, provider: str = "auto", threads: int = 0) -> LoadedModel:
    """Open an ONNX model with its card. `provider`: 'auto', 'cuda' or 'cpu'; `threads` 0 lets ORT decide.

    Sessions are cached by file, modification time and settings: an analyst mapping scene after scene
    in QGIS pays for graph optimisation once, and a replaced file is reloaded.
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"model file not found: {path}") from exc
    key = (str(path), stat.st_mtime_ns, stat.st_size, provider, threads)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _open_session(path, provider, threads)
    return _CACHE[key]


def _open_session(path: Path, provider: str, threads: int) -> LoadedModel:
    import onnxruntime as ort

    card = read_card(path)
    if provider == "cpu":
        providers = ["CPUExecutionProvider"]
    elif provider == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ModelError("CUDA was requested but this onnxruntime has no CUDAExecutionProvider")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
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
    return LoadedModel(path=path, card=card, session=session, provider=used)
