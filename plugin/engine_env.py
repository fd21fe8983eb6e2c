"""The managed engine environment inside QGIS: where it lives and whether it works.

The environment is a venv in the QGIS profile (`<profile>/contrasat/engine-env`), created from the base
Python QGIS runs on without system site packages, from the hashed lock of requirements/ (engine_install.py).
It is checked by running a real job on it (`python -m contrasat.models.engine_check`: every pinned package,
then a small map of the bundled sample), never by importing anything in QGIS's process.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsSettings, QgsTask

from .engine import ENV_SUBDIR, PACKAGE, base_python, engine_environ, engine_home, env_python, package_root

LOG_TAG = "Contrasat"
ENGINE_PYTHON_KEY = "contrasat/engine_python"  # an existing interpreter with the runtime (overrides the env)
BASE_PYTHON_KEY = "contrasat/base_python"  # the interpreter the managed env is created from
WHEELHOUSE_KEY = "contrasat/wheelhouse"
MODELS_DIR_KEY = "contrasat/models_dir"  # where fine-tuned models go (default: <profile>/contrasat/models)
CHECK_TIMEOUT_S = 300  # a cold start (first import of GDAL, ONNX Runtime) on a slow disk takes a while
CHECK_MODULE = f"{PACKAGE}.models.engine_check"


def log(text: str, level: Qgis.MessageLevel = Qgis.Info) -> None:
    """Write to the Contrasat tab of the Log Messages panel."""
    QgsMessageLog.logMessage(text, LOG_TAG, level)


def home() -> Path:
    return engine_home(QgsApplication.qgisSettingsDirPath())


def env_dir() -> Path:
    return home() / ENV_SUBDIR


def user_models_dir() -> Path:
    """The folder of the user's own models (fine-tuned in the dock): listed by every model picker."""
    override = str(QgsSettings().value(MODELS_DIR_KEY, "") or "").strip()
    return Path(override) if override else home() / "models"


def engine_python() -> Path:
    """The interpreter jobs run on: the user's override, else the managed environment's."""
    override = str(QgsSettings().value(ENGINE_PYTHON_KEY, "") or "").strip()
    return Path(override) if override else env_python(env_dir())


def creation_python() -> str | None:
    """The interpreter the managed environment is created from (setting, else QGIS's base Python)."""
    override = str(QgsSettings().value(BASE_PYTHON_KEY, "") or "").strip()
    return override or base_python()


def engine_env() -> dict[str, str]:
    """Environment of every engine process: the plugin's package on PYTHONPATH, nothing of QGIS's."""
    return engine_environ(package_root(home()))


# The engine without the training packages: the CLI's own check (torch) or an import that failed (scipy).
MISSING_PACKAGE = re.compile(r"needs torch|No module named '([\w.]+)'")
TRAINING_PACKAGES = ("torch", "scipy")  # what fine-tuning needs beyond the runtime pins


def training_hint(error: str, python: str | Path) -> str:
    """The engine's error, or one clear message when the engine lacks what fine-tuning needs."""
    found = MISSING_PACKAGE.search(error)
    if found is None:
        return error
    module = found.group(1) or "torch"
    if module.startswith("contrasat.training"):
        return (
            "this copy of the plugin has no training code (contrasat/training): reinstall it from a full zip"
        )
    module = module.split(".")[0]
    if module not in TRAINING_PACKAGES:  # a runtime package: the engine itself is broken, say so as it is
        return error
    return (
        f"Fine-tuning needs {module} in the Contrasat engine ({python}); mapping does not. Install torch and "
        "scipy into it (docs/qgis.md, Fine-tune), or choose an interpreter that has them in "
        "Raster > Contrasat > Settings…"
    )


@dataclass
class EngineStatus:
    """What the last engine check found."""

    ok: bool
    python: Path
    message: str = ""
    models: list[dict[str, Any]] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)  # what this onnxruntime build offers
    cuda: bool = False  # a session really ran on CUDA (a GPU build without a usable GPU says False)
    pieces: list[dict[str, Any]] = field(default_factory=list)  # name, ok, detail, fix of each checked piece

    def failed(self) -> list[dict[str, Any]]:
        """The pieces that do not work."""
        return [p for p in self.pieces if not p.get("ok")]


_STATUS: dict[str, EngineStatus] = {}


def last_status() -> EngineStatus | None:
    """The result of the latest check in this QGIS session (None before the first)."""
    return _STATUS.get("last")


def check_command(python: str | Path) -> list[str]:
    """The engine's self-check: imports every pin, then maps a small part of the bundled sample."""
    return [str(python), "-m", CHECK_MODULE]


def check_engine(on_line: Any = None, env: dict[str, str] | None = None) -> EngineStatus:
    """Run the engine check on the engine's Python (blocking: call it off the GUI thread, EngineCheckTask)."""
    python = engine_python()
    if not python.is_file():
        status = EngineStatus(False, python, f"the Contrasat engine is not installed ({python} is missing)")
        _STATUS["last"] = status
        return status
    try:
        done = subprocess.run(
            check_command(python), env=env or engine_env(), capture_output=True, text=True,
            timeout=CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        code, out, err = done.returncode, done.stdout, done.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, out, err = -1, "", str(exc)
    lines = err.strip().splitlines()
    if on_line is not None:
        for line in lines[-20:]:
            on_line(line)
    status = status_from_report(python, code, out, lines)
    if on_line is not None:
        on_line(status.message)
    _STATUS["last"] = status
    log(status.message, Qgis.Info if status.ok else Qgis.Warning)
    return status


def status_from_report(python: Path, code: int, out: str, err_lines: list[str]) -> EngineStatus:
    """The check's JSON report as an EngineStatus whose message names each failing piece and its fix."""
    report = report_from_json(out)
    pieces = [p for p in report.get("pieces", []) if isinstance(p, dict)]
    status = EngineStatus(
        ok=code == 0 and bool(report.get("ok")), python=python, models=models_from_json(out),
        providers=providers_from_json(out), cuda=bool(report.get("cuda")), pieces=pieces,
    )  # fmt: skip
    if status.ok:
        where = ", ".join(friendly_providers(status.providers, status.cuda))
        seconds = report.get("job_seconds")
        timing = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
        status.message = (
            f"engine ready ({python}): a test map ran{timing} on {where}; {len(status.models)} bundled models"
        )
    elif status.failed():
        lines = [f"- {p.get('name')}: {p.get('detail')}. Fix: {p.get('fix')}" for p in status.failed()]
        status.message = "the engine check failed:\n" + "\n".join(lines)
    else:  # the check could not even report (no contrasat package, a crash, a time-out)
        tail = "\n".join(err_lines[-8:])
        status.message = f"the engine check failed (exit code {code})" + (f":\n{tail}" if tail else "")
    return status


def friendly_providers(providers: list[str], cuda: bool) -> list[str]:
    """'CPU', 'CUDA (GPU)' for the providers a job can use (CUDA only when it really ran)."""
    names = ["CUDA (GPU)"] if cuda else []
    return names + (["CPU"] if "CPUExecutionProvider" in providers or not names else [])


def report_from_json(text: str) -> dict[str, Any]:
    """The check's report (a JSON object), {} when the output is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def models_from_json(text: str) -> list[dict[str, Any]]:
    """The model list of the check's report (an object with 'models'), or of `models --json` (a list)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if isinstance(data, dict):
        data = data.get("models", [])
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def providers_from_json(text: str) -> list[str]:
    """ONNX Runtime providers of the check's report; [] for output without them (e.g. a bare model list)."""
    found = report_from_json(text).get("providers", [])
    return [str(p) for p in found] if isinstance(found, list) else []


def cuda_available() -> bool:
    """True when the last check ran a model on CUDA: only then is CUDA offered in Settings."""
    status = last_status()
    return bool(status and status.ok and status.cuda)


class EngineCheckTask(QgsTask):
    """The engine check off the GUI thread (it starts a Python, imports GDAL and ONNX Runtime, maps a tile).

    `on_done(status)` is called on the GUI thread when it has finished.
    """

    def __init__(self, on_done: Any = None) -> None:
        super().__init__("Contrasat: check the engine", QgsTask.Flags())
        self.on_done = on_done
        self.status: EngineStatus | None = None

    def run(self) -> bool:
        self.status = check_engine()
        return self.status.ok

    def finished(self, result: bool) -> None:  # noqa: ARG002 - the status says more than the bool
        if self.on_done is not None and self.status is not None:
            self.on_done(self.status)
