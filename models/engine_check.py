"""The engine's self-check: every pinned package imports, then a real job runs end to end.

    python -m contrasat.models.engine_check      (prints one JSON object; exit 0 when every piece works)

It maps a 64 x 64-pixel area of the bundled Sentinel-1 sample with the default flood model through the
same code as every job (rasterio read, ONNX Runtime session, shapely AOI, the all-or-nothing writer), so
"engine ready" means a job can run, not merely that numpy imports. Each failing piece is reported by name
with the fix in the user's words. Only the standard library is imported at module level: a broken engine
must still print its report.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PINS = PACKAGE_ROOT / "requirements" / "runtime.txt"
SAMPLE_S1 = PACKAGE_ROOT / "resources" / "sample" / "Spain_7370579_S1Hand.tif"
AOI_PIXELS = 64  # the check's map: small enough to take well under a second on a CPU
# distribution name -> module name, where they differ; onnxruntime-gpu provides `onnxruntime`
IMPORT_NAMES = {"scikit-learn": "sklearn", "onnxruntime-gpu": "onnxruntime"}
ALTERNATIVES = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu")}  # either distribution satisfies the pin
REINSTALL = "install the engine again (Raster > Contrasat > Check dependencies…, then Install)"


@dataclass
class Piece:
    """One thing the engine needs, and whether it works."""

    name: str
    ok: bool
    detail: str = ""  # version, or what went wrong
    fix: str = ""  # what the user can do about it (empty when ok)


def runtime_pins(path: Path = RUNTIME_PINS) -> dict[str, str]:
    """Distribution name -> pinned version from requirements/runtime.txt."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if "==" in text:
            name, version = text.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def installed_version(name: str) -> tuple[str, str] | None:
    """(distribution, version) installed for a pin (onnxruntime may be onnxruntime-gpu), None if absent."""
    for dist in ALTERNATIVES.get(name, (name,)):
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def check_package(name: str, pinned: str) -> Piece:
    """Import one pinned package; the version it has is reported, a different one is said, not failed."""
    found = installed_version(name)
    module = IMPORT_NAMES.get(found[0] if found else name, name)
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken binary raising anything at import
        what = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        return Piece(name, False, f"cannot import {module} ({what})", f"the engine lacks {name}: {REINSTALL}")
    if found is None:
        return Piece(name, True, "imports, but pip does not list it")
    dist, version = found
    label = f"{dist} {version}"
    if pinned and version != pinned and dist == name:
        label += f" (pinned {pinned}: {REINSTALL} to get the tested versions)"
    return Piece(name, True, label)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _step(name: str, fix: str, action: Any) -> tuple[Piece, Any]:
    """Run one step of the test job; its Piece and its value (None when it failed)."""
    try:
        value = action()
    except Exception as exc:
        tail = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" (in {Path(tail.filename).name}:{tail.lineno})"
        return Piece(name, False, _first_line(exc) + where, fix), None
    return Piece(name, True, str(value) if isinstance(value, str) else ""), value


def aoi_square(path: Path, pixels: int = AOI_PIXELS) -> tuple[dict[str, Any], str]:
    """A square AOI of `pixels` pixels in the middle of a raster, as a drawn geometry (GeoJSON, CRS)."""
    import rasterio
    from shapely.geometry import box, mapping

    with rasterio.open(path) as src:
        col, row = (src.width - pixels) // 2, (src.height - pixels) // 2
        left, top = src.transform * (col, row)
        right, bottom = src.transform * (col + pixels, row + pixels)
        crs = src.crs.to_string()
    return mapping(box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))), crs


def check_job(folder: Path, provider: str = "auto") -> tuple[list[Piece], dict[str, Any]]:
    """Map the AOI square of the sample with the default flood model, step by named step."""
    import numpy as np
    import rasterio

    from .aoi import load_aoi
    from .execution import Execution
    from .pipeline import map_floods
    from .registry import default_model_path
    from .session import load_model

    pieces: list[Piece] = []
    facts: dict[str, Any] = {}

    def read() -> str:
        with rasterio.open(SAMPLE_S1) as src:
            block = src.read(1, window=((0, 16), (0, 16)))
        return f"{block.shape[0]}x{block.shape[1]} block read"

    piece, _ = _step("read a raster (rasterio/GDAL)", f"rasterio cannot read GeoTIFFs: {REINSTALL}", read)
    pieces.append(piece)

    def session() -> str:
        model = load_model(default_model_path("flood"), provider=provider)
        facts["provider"] = model.provider
        return f"{model.card.name} on {model.provider}"

    piece, _ = _step(
        "run a model (ONNX Runtime)", f"ONNX Runtime cannot run the bundled model: {REINSTALL}", session
    )
    pieces.append(piece)

    def clip() -> Any:
        geometry, crs = aoi_square(SAMPLE_S1)
        with rasterio.open(SAMPLE_S1) as src:
            load_aoi((geometry, crs), src.crs)
        return geometry, crs

    piece, aoi = _step(
        "clip to an area of interest (shapely)",
        f"shapely cannot handle the area of interest: {REINSTALL}",
        clip,
    )
    pieces.append(piece)
    if not all(p.ok for p in pieces):
        return pieces, facts

    def job() -> str:
        out = folder / "check_flood.tif"
        started = time.perf_counter()
        result = map_floods(
            SAMPLE_S1,
            out,
            aoi=aoi,
            statistics=folder / "check_areas.csv",
            config=Execution(provider=provider),
        )
        facts["job_seconds"] = round(time.perf_counter() - started, 3)
        with rasterio.open(out) as written:
            classes = written.read(1)
        values = {c.value for c in result.classes} | {result.card.output_nodata}
        if classes.size == 0 or not set(np.unique(classes).tolist()) <= values:
            raise ValueError(
                f"the written map holds values outside the model's classes: {np.unique(classes)}"
            )
        return (
            f"{classes.shape[0]}x{classes.shape[1]} map written by {result.model_name} on {result.provider}"
        )

    piece, _ = _step("write a map (the whole job)", f"a job cannot run to its end: {REINSTALL}", job)
    pieces.append(piece)
    return pieces, facts


def cuda_works() -> bool:
    """True when an ONNX Runtime session really runs on CUDA (not only when the provider is listed)."""
    from .registry import default_model_path
    from .session import load_model

    try:
        return load_model(default_model_path("flood"), provider="cuda").provider == "CUDAExecutionProvider"
    except Exception:
        return False


def model_listing() -> list[dict[str, Any]]:
    """The bundled models (name, task, default, file), as `contrasat models --json` lists them."""
    from .registry import DEFAULTS, bundled_models

    return [
        {
            "name": card.name,
            "task": card.task,
            "default": DEFAULTS.get(card.task) == card.name,
            "file": str(path),
        }
        for path, card in bundled_models()
    ]


def run_check() -> dict[str, Any]:
    """The whole check as JSON-ready data: ok, pieces, providers, cuda, models, seconds."""
    started = time.perf_counter()
    pieces = [check_package(name, version) for name, version in runtime_pins().items()]
    report: dict[str, Any] = {"python": sys.executable, "providers": [], "cuda": False, "models": []}
    if all(p.ok for p in pieces):
        import onnxruntime

        report["providers"] = list(onnxruntime.get_available_providers())
        report["models"] = model_listing()
        with tempfile.TemporaryDirectory(prefix="contrasat-check-") as folder:
            job_pieces, facts = check_job(Path(folder))
        pieces += job_pieces
        report.update(facts)
        if "CUDAExecutionProvider" in report["providers"]:
            report["cuda"] = cuda_works()
    else:
        pieces.append(Piece("test job", False, "not run: packages are missing", REINSTALL))
    report["ok"] = all(p.ok for p in pieces)
    report["pieces"] = [asdict(p) for p in pieces]
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def main() -> int:
    try:
        report = run_check()
    except Exception as exc:  # the report itself must always be printed
        report = {"ok": False, "pieces": [asdict(Piece("engine check", False, _first_line(exc), REINSTALL))]}
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
