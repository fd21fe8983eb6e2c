"""The managed engine environment inside QGIS: where it lives, whether it works, and the installer task.

The environment is a venv in the QGIS profile (`<profile>/contrasat/engine-env`), created from the base
Python QGIS runs on without system site packages, with the exact pins of requirements/runtime.txt. It is
checked by running the engine (`python -m contrasat models --json`), never by importing anything here.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsSettings, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .engine import (
    ENV_SUBDIR,
    REQUIREMENTS,
    base_python,
    check_command,
    engine_environ,
    engine_home,
    env_python,
    package_root,
    pip_command,
    run_logged,
    venv_command,
)

LOG_TAG = "Contrasat"
ENGINE_PYTHON_KEY = "contrasat/engine_python"  # an existing interpreter with the runtime (overrides the env)
BASE_PYTHON_KEY = "contrasat/base_python"  # the interpreter the managed env is created from
WHEELHOUSE_KEY = "contrasat/wheelhouse"
MODELS_DIR_KEY = "contrasat/models_dir"  # where fine-tuned models go (default: <profile>/contrasat/models)
CHECK_TIMEOUT_S = 120
# pip output that means "no index reachable" or "not in the wheel folder"
OFFLINE_HINTS = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Failed to establish a new connection",
)


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
    providers: list[str] = field(default_factory=list)  # ONNX Runtime providers, when the check lists them


_STATUS: dict[str, EngineStatus] = {}


def last_status() -> EngineStatus | None:
    """The result of the latest check in this QGIS session (None before the first)."""
    return _STATUS.get("last")


def check_engine(on_line: Any = None) -> EngineStatus:
    """Run `python -m contrasat models --json` on the engine; ok when it lists the bundled models."""
    python = engine_python()
    if not python.is_file():
        status = EngineStatus(False, python, f"the Contrasat engine is not installed ({python} is missing)")
        _STATUS["last"] = status
        return status
    try:
        done = subprocess.run(
            check_command(python), env=engine_env(), capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        code, out, err = done.returncode, done.stdout, done.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, out, err = -1, "", str(exc)
    lines = err.strip().splitlines()
    if on_line is not None:
        for line in lines[-20:]:
            on_line(line)
    models = models_from_json(out)
    if code == 0 and models:
        status = EngineStatus(True, python, f"engine ready ({python}): {len(models)} bundled models", models)
        status.providers = providers_from_json(out)
    else:
        tail = "\n".join(lines[-8:])
        status = EngineStatus(
            False, python, f"the engine check failed (exit code {code})" + (f":\n{tail}" if tail else "")
        )
    _STATUS["last"] = status
    log(status.message, Qgis.Info if status.ok else Qgis.Warning)
    return status


def models_from_json(text: str) -> list[dict[str, Any]]:
    """The model list printed by `models --json` (a list, or an object with a 'models' list)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if isinstance(data, dict):
        data = data.get("models", [])
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def providers_from_json(text: str) -> list[str]:
    """ONNX Runtime providers when `models --json` reports them (top-level or per model)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    found = data.get("providers", []) if isinstance(data, dict) else []
    return [str(p) for p in found] if isinstance(found, list) else []


def offline_failure(lines: list[str]) -> bool:
    """True when pip's output says it could reach neither an index nor the wheels it needs."""
    return any(hint in line for line in lines for hint in OFFLINE_HINTS)


class InstallTask(QgsTask):
    """Creates the managed environment and installs the pins, streaming every line through `line`."""

    line = pyqtSignal(str)

    def __init__(self, wheelhouse: str | None = None, requirements: Path = REQUIREMENTS) -> None:
        super().__init__("Contrasat: install the engine", QgsTask.CanCancel)
        self.wheelhouse = wheelhouse or None
        self.requirements = requirements
        self.status: EngineStatus | None = None
        self.error = ""
        self.lines: list[str] = []

    def _emit(self, text: str) -> None:
        self.lines.append(text)
        self.line.emit(text)

    def run(self) -> bool:
        """Worker thread: venv (when missing), pip install, then the engine check."""
        target = env_dir()
        python = env_python(target)
        env = engine_env()
        if not python.is_file():
            base = creation_python()
            if base is None:
                self.error = "no Python interpreter found to create the engine with (set one in Settings)"
                return False
            target.parent.mkdir(parents=True, exist_ok=True)
            self._emit(f"$ {' '.join(venv_command(base, target))}")
            if (
                run_logged(venv_command(base, target), env, self._emit, self.isCanceled) != 0
                or not python.is_file()
            ):
                self.error = (
                    f"could not create the environment with {base}; on Debian/Ubuntu install python3-venv"
                )
                return False
        self.setProgress(10)
        if self.wheelhouse and not Path(self.wheelhouse).is_dir():
            self.error = f"the wheel folder does not exist: {self.wheelhouse}"
            return False
        pip = pip_command(python, self.requirements, self.wheelhouse)
        self._emit(f"$ {' '.join(pip)}")
        start = len(self.lines)
        code = run_logged(pip, env, self._emit, self.isCanceled)
        if self.isCanceled():
            self.error = "installation cancelled"
            return False
        if code != 0:
            if offline_failure(self.lines[start:]):
                where = (
                    f"the wheel folder {self.wheelhouse}" if self.wheelhouse else "the Python package index"
                )
                self.error = (
                    f"pip could not get the packages from {where}. Connect to the internet, or choose a "
                    "folder of wheels made on a connected machine with "
                    "`pip download -r requirements/runtime.txt -d FOLDER` (see docs/qgis.md)."
                )
            else:
                self.error = f"pip failed (exit code {code}); see the log above"
            return False
        self.setProgress(90)
        self._emit("$ " + " ".join(check_command(python)))
        self.status = check_engine(self._emit)
        if not self.status.ok:
            self.error = self.status.message
            return False
        self.setProgress(100)
        return True
