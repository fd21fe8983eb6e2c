"""ONNX Runtime sessions: CUDA first when it is really usable, CPU otherwise, and the provider in use reported.

'auto' takes CUDA when it runs and the CPU otherwise; 'cuda' is a demand: without CUDA in this engine the job
stops with one error (InputError) before anything is written, never a silent run on the CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .card import FEATURES, ModelCard, read_card
from .errors import InputError, ModelError


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


# Tiles of BATCH_TILE px per batch when the caller leaves it to the provider: a GPU wants large batches
# to stay busy; on the CPU a larger batch only adds memory (throughput is flat beyond a few 256-px tiles).
BATCH_FOR_PROVIDER = {"CUDAExecutionProvider": 16, "CPUExecutionProvider": 4}
BATCH_TILE = 256


def batch_for(provider: str, tile: int = BATCH_TILE) -> int:
    """Default tiles per inference batch for the provider in use and the tile size: the pixels of the
    provider's batch of BATCH_TILE-px tiles, never more tiles. A larger tile takes fewer per batch: ONNX
    Runtime's arena holds a batch's activations for the rest of the run (a 512-px network at 4 tiles a batch
    held 350 MiB more than at 1 for the same speed, bench/overhead.py), and a scene's strip buffers add to it."""
    tiles = BATCH_FOR_PROVIDER.get(provider, 4)
    return max(1, min(tiles, tiles * BATCH_TILE * BATCH_TILE // (tile * tile)))


_CACHE: dict[tuple, LoadedModel] = {}
_CACHE_SIZE = 4


def load_model(path: str | Path, provider: str = "auto", threads: int = 0, device_id: int = 0) -> LoadedModel:
    """Open an ONNX model with its card. `provider`: 'auto', 'cuda' or 'cpu'; `threads` 0 lets ORT decide;
    `device_id`: the GPU CUDA runs on. 'cuda' where CUDA cannot run raises InputError (no_cuda()).

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


def no_cuda(why: str) -> InputError:
    """The one error of a job that asked for CUDA where this engine cannot run it."""
    return InputError(
        f"CUDA is not available in this engine ({why}): install the GPU engine (onnxruntime-gpu; the QGIS "
        "plugin's installer offers it where an NVIDIA GPU is found), or choose --provider cpu or auto"
    )


def _open_session(path: Path, provider: str, threads: int, device_id: int = 0) -> LoadedModel:
    import onnxruntime as ort

    card = read_card(path)
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if provider == "cuda" and not has_cuda:
        raise no_cuda("this onnxruntime has no CUDAExecutionProvider")
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
    if not any("CUDA" in str(p) for p in providers):
        # ORT's memory pattern plans one block for every intermediate of a run and keeps it: without it the
        # CPU arena reuses freed tensors. Same outputs (bit for bit) and speed, and a 512-px network at batch
        # 4 peaked 190 MiB lower and warmed up in one run instead of two (bench/overhead.py).
        options.enable_mem_pattern = False
    options.log_severity_level = 3  # a missing CUDA library is reported by `provider`, not by log spam
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        raise ModelError(f"ONNX Runtime cannot load {path.name}: {str(exc).splitlines()[0][:200]}") from exc
    names = [i.name for i in session.get_inputs()]
    missing = [s.name for s in card.inputs if s.name not in names]
    if missing:
        raise ModelError(f"model card names inputs the network does not have: {', '.join(missing)}")
    probe(session, card)
    used = session.get_providers()[0]
    if provider == "cuda" and used != "CUDAExecutionProvider":  # a CUDA build, but no usable GPU or library
        raise no_cuda("no usable NVIDIA GPU or CUDA libraries")
    return LoadedModel(path=path, card=card, session=session, provider=used)


PROBE_EDGE = 32  # tile side of the load-time check: a multiple of 16 that any U-Net depth here accepts


def probe(session, card: ModelCard) -> None:
    """Check once, when a model is loaded, that the network does what its card says: input channels, a
    4-D (N, C, H, W) output with one map per card class at the input's size (or (N, C) scores for pixel
    time series). Each mismatch is one ModelError line instead of a crash or a wrong map later."""
    declared = {i.name: i.shape for i in session.get_inputs()}
    feeds = {}
    series = card.task == "pixel_timeseries"
    steps = int((card.training.get("series") or {}).get("n_steps", 0)) if series else 0
    for spec in card.inputs:
        shape = declared[spec.name]
        if len(shape) != 4:
            raise ModelError(
                f"model {card.name}: network input '{spec.name}' has {len(shape)} dimensions, not 4 (N, C, H, W)"
            )
        if isinstance(shape[1], int) and shape[1] != len(spec.bands):
            raise ModelError(
                f"model {card.name}: network input '{spec.name}' takes {shape[1]} channels but the card lists "
                f"{len(spec.bands)} bands ({', '.join(spec.bands)})"
            )
        edge = steps or PROBE_EDGE
        h = shape[2] if isinstance(shape[2], int) else edge
        w = shape[3] if isinstance(shape[3], int) else edge
        feeds[spec.name] = np.zeros((1, len(spec.bands), h, w), dtype=np.float32)
    if series and not steps:
        return  # no series contract: the series job refuses the card itself
    try:
        out = np.asarray(session.run(None, feeds)[0])
    except Exception as exc:
        raise ModelError(f"model {card.name} fails on a test tile: {str(exc).splitlines()[0][:160]}") from exc
    n = len(card.classes)
    if series:
        if out.shape != (1, n):
            raise ModelError(
                f"model {card.name} outputs shape {tuple(out.shape)}; expected (N, {n}) class scores"
            )
        return
    h, w = next(iter(feeds.values())).shape[2:]
    if out.ndim != 4:
        raise ModelError(
            f"model {card.name} outputs a {out.ndim}-D array {tuple(out.shape)}; expected (N, C, H, W) class maps"
        )
    if out.shape[1] != n and card.task != FEATURES:  # a feature extractor has D channels, no classes
        raise ModelError(f"model {card.name} outputs {out.shape[1]} classes but its card lists {n}")
    if tuple(out.shape[2:]) != (h, w):
        raise ModelError(
            f"model {card.name} outputs {out.shape[2]}x{out.shape[3]} px for a {h}x{w} px tile; it must keep the input size"
        )
