"""Runtime dependencies in QGIS's Python: what is missing, the exact pip command, and the opt-in installer.

Nothing here installs anything by itself: `install_command` only builds the command line, and the plugin runs
it (`run_install`) after the user said yes in the dependency dialog.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent.parent
# Plugin-local folder for installed packages. It is appended to sys.path (not prepended) so the numpy,
# GDAL and PyQt that QGIS ships always win over anything pip puts here.
LIBS_DIR = PLUGIN_DIR / "ext-libs"

# module name -> pinned requirement. Versions are the ones the runtime is tested with; numpy stays <2
# because QGIS's own GDAL/scipy bindings are built against numpy 1.
REQUIREMENTS: dict[str, str] = {
    "numpy": "numpy>=1.24,<2",
    "rasterio": "rasterio==1.4.4",
    "onnxruntime": "onnxruntime==1.31.1",
    "onnx": "onnx==1.23.2",
    "shapely": "shapely==2.2.0",
    "fiona": "fiona==1.10.1",
}


def activate_libs(folder: Path = LIBS_DIR) -> bool:
    """Make packages installed by the opt-in installer importable; True when the folder exists."""
    if not folder.is_dir():
        return False
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    return True


def missing_modules(modules: list[str] | None = None) -> list[str]:
    """Required modules that cannot be imported, in REQUIREMENTS order (found without importing them)."""
    wanted = modules if modules is not None else list(REQUIREMENTS)
    return [name for name in wanted if importlib.util.find_spec(name) is None]


def python_executable() -> str:
    """The Python interpreter QGIS runs on.

    Inside QGIS `sys.executable` is often the QGIS binary itself (Linux) or qgis-bin.exe (Windows), which
    cannot run pip; the interpreter then lives under sys.prefix / sys.base_prefix.
    """
    exe = Path(sys.executable)
    if exe.name.lower().startswith("python"):
        return str(exe)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for base in (Path(sys.prefix), Path(sys.base_prefix)):
        for candidate in (base / "python3.exe", base / "python.exe", base / "bin" / f"python{version}"):
            if candidate.is_file():
                return str(candidate)
    return f"python{version}" if os.name != "nt" else "python3"


def install_command(modules: list[str], target: Path = LIBS_DIR) -> list[str]:
    """`python -m pip install --target <plugin>/ext-libs <pinned requirements>` for `modules`."""
    pins = [REQUIREMENTS[m] for m in modules if m in REQUIREMENTS]
    if pins and "numpy" not in modules:
        pins.append(REQUIREMENTS["numpy"])  # keep pip from pulling numpy 2 in as a dependency
    return [python_executable(), "-m", "pip", "install", "--upgrade", "--target", str(target), *pins]


def command_text(command: list[str]) -> str:
    """The command as a user would type it in a shell (arguments with spaces or '<' quoted)."""
    special = set(" <>|&;'\"")
    return " ".join(f'"{arg}"' if any(c in special for c in arg) else arg for arg in command)


def run_install(command: list[str], timeout: float = 1800) -> tuple[bool, str]:
    """Run the pip command (only after consent); returns (succeeded, last lines of pip's output)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    if done.returncode == 0:
        activate_libs(Path(command[command.index("--target") + 1]))
        importlib.invalidate_caches()
    return done.returncode == 0, tail
