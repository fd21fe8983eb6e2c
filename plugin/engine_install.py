"""Installing the engine: which lock file (CPU, NVIDIA GPU, training), the pip commands, the background task.

One installation at a time: `start_install` refuses a second while one runs, and every part of the plugin
follows the running one through `install_events()` (the dock disables Run and Install, shows progress and,
on failure, what failed with a retry). The log of the last installation is kept in the profile
(`<profile>/contrasat/install.log`).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import QObject, pyqtSignal

from .engine import PLUGIN_DIR, env_python, venv_command
from .engine_env import EngineStatus, check_command, check_engine, creation_python, engine_env, env_dir, home

REQUIREMENTS_DIR = PLUGIN_DIR / "requirements"
RUNTIME_PINS = REQUIREMENTS_DIR / "runtime.txt"
RUNTIME_LOCK = REQUIREMENTS_DIR / "runtime.lock"
GPU_LOCK = REQUIREMENTS_DIR / "runtime-gpu.lock"
TRAIN_LOCK = REQUIREMENTS_DIR / "train-engine.lock"
TRAIN_GPU_LOCK = REQUIREMENTS_DIR / "train-engine-gpu.lock"  # the GPU engine's pins + training support
INSTALL_LOG = "install.log"
# The CPU build of torch is published on PyTorch's own index only (PyPI's Linux torch pulls CUDA libraries).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
NVIDIA_SMI_TIMEOUT_S = 15
# Download sizes shown before consent: cpu measured (the locked wheels, Linux x86-64); gpu: cpu with the
# onnxruntime-gpu wheel instead; train: the torch CPU wheel and its dependencies.
SIZE_MB = {"cpu": 185, "gpu": 460, "train": 200}
# pip output that means "no index reachable" or "not in the wheel folder"
OFFLINE_HINTS = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Failed to establish a new connection",
)


def log_path() -> Path:
    """The log of the last installation, kept in the profile next to the engine."""
    return home() / INSTALL_LOG


def nvidia_gpus(timeout: float = NVIDIA_SMI_TIMEOUT_S) -> list[str]:
    """The NVIDIA GPUs `nvidia-smi -L` reports ('GPU 0: ...' lines); [] without the tool, a driver or a GPU."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        done = subprocess.run(
            [tool, "-L"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("GPU ")]


def lock_applies() -> bool:
    """The locks are resolved for CPython 3.11 on Linux x86-64; elsewhere the top-level pins are used."""
    return (
        platform.system() == "Linux"
        and platform.machine().lower() in ("x86_64", "amd64")
        and sys.version_info[:2] == (3, 11)
    )


@dataclass
class InstallPlan:
    """What one installation installs: the requirements file, whether its hashes are enforced, and why."""

    requirements: Path
    hashed: bool
    gpu: bool = False
    training: bool = False
    remove: tuple[str, ...] = ()  # distributions to uninstall first (the other onnxruntime build)

    def describe(self) -> str:
        """One sentence for the installer dialog."""
        what = "the GPU engine (onnxruntime-gpu)" if self.gpu else "the engine"
        if self.training:
            what = "training support (torch CPU, scikit-learn, scipy)" + (
                " for the GPU engine" if self.gpu else ""
            )
        how = (
            "every package pinned and checked against its hash"
            if self.hashed
            else "the top-level packages pinned (no lock for this platform: see the help)"
        )
        return f"{what} from {self.requirements.name}, {how}"


def plan_install(gpu: bool = False, training: bool = False, locked: bool | None = None) -> InstallPlan:
    """The plan for the engine (CPU or NVIDIA GPU) or for training support added to it.

    Each training lock holds the whole engine, so the one matching the engine's onnxruntime build is used
    (the CPU lock would bring `onnxruntime` next to `onnxruntime-gpu`), and the other build is removed.
    """
    locked = lock_applies() if locked is None else locked
    if training and gpu and locked and TRAIN_GPU_LOCK.is_file():
        return InstallPlan(TRAIN_GPU_LOCK, True, gpu=True, training=True, remove=("onnxruntime",))
    if training:
        return InstallPlan(TRAIN_LOCK, True, training=True, remove=("onnxruntime-gpu",))
    if gpu and locked and GPU_LOCK.is_file():  # the GPU engine exists only as a lock (Linux x86-64)
        return InstallPlan(GPU_LOCK, True, gpu=True, remove=("onnxruntime",))
    if locked and RUNTIME_LOCK.is_file():
        return InstallPlan(RUNTIME_LOCK, True, remove=("onnxruntime-gpu",))
    return InstallPlan(RUNTIME_PINS, False, remove=("onnxruntime-gpu",))


def pip_install_command(python: str | Path, plan: InstallPlan, wheelhouse: str | None = None) -> list[str]:
    """pip install of a plan; hashed plans with --require-hashes; a wheel folder means no network at all."""
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    command += ["--progress-bar", "off"]
    if plan.hashed:
        command += ["--require-hashes", "--only-binary", ":all:"]
    command += ["-r", str(plan.requirements)]
    if wheelhouse:
        command += ["--no-index", "--find-links", str(wheelhouse)]
    elif plan.training:
        command += ["--extra-index-url", TORCH_CPU_INDEX]  # hashes still decide which file is accepted
    return command


def pip_uninstall_command(python: str | Path, names: tuple[str, ...]) -> list[str]:
    return [str(python), "-m", "pip", "uninstall", "--yes", "--disable-pip-version-check", *names]


def run_logged(
    command: list[str],
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> int:
    """Run a setup command (venv, pip), streaming each output line; its exit code (-1: not started).

    The process is used as a context manager so its pipe is closed on every path (no ResourceWarning).
    """
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, text=True, encoding="utf-8", errors="replace", bufsize=1,
        )  # fmt: skip
    except OSError as exc:
        if on_line is not None:
            on_line(f"cannot run {command[0]}: {exc}")
        return -1
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_line is not None:
                on_line(line.rstrip("\n"))
            if is_cancelled is not None and is_cancelled():
                proc.terminate()
                break
        return proc.wait()


def offline_failure(lines: list[str]) -> bool:
    """True when pip's output says it could reach neither an index nor the wheels it needs."""
    return any(hint in line for line in lines for hint in OFFLINE_HINTS)


class InstallTask(QgsTask):
    """Creates the managed environment and installs a plan, streaming every line through `line`.

    Progress: 5 % venv, 10-85 % pip (by the packages it reports), 90 % the engine check, 100 % done.
    """

    line = pyqtSignal(str)

    def __init__(self, wheelhouse: str | None = None, plans: list[InstallPlan] | None = None) -> None:
        self.plans = plans or [plan_install()]
        title = "add training support" if all(p.training for p in self.plans) else "install the engine"
        super().__init__(f"Contrasat: {title}", QgsTask.CanCancel)
        self.wheelhouse = wheelhouse or None
        self.status: EngineStatus | None = None
        self.error = ""
        self.lines: list[str] = []
        self._log = None
        self._packages = max(1, sum(_count_packages(p.requirements) for p in self.plans))
        self._seen = 0

    def _emit(self, text: str) -> None:
        self.lines.append(text)
        if self._log is not None:
            self._log.write(text + "\n")
            self._log.flush()
        if text.startswith(("Collecting ", "Processing ")):  # one per package pip fetches
            self._seen += 1
            self.setProgress(min(85.0, 10 + 75 * self._seen / self._packages))
        self.line.emit(text)

    def run(self) -> bool:
        """Worker thread: the install, its log written to the profile as it goes."""
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as self._log:
            for plan in self.plans:
                self._emit(f"# {self.description()}: {plan.describe()}")
            ok = self._install()
            self._emit(f"# {'finished' if ok else 'failed: ' + self.error}")
        self._log = None
        return ok

    def _install(self) -> bool:
        target = env_dir()
        python = env_python(target)
        env = engine_env()
        if not python.is_file():
            if self.plans[0].training:
                self.error = "install the engine first; training support is added to it"
                return False
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
        self.setProgress(5)
        if self.wheelhouse and not Path(self.wheelhouse).is_dir():
            self.error = f"the wheel folder does not exist: {self.wheelhouse}"
            return False
        removed: set[str] = set()
        for plan in self.plans:
            remove = tuple(name for name in plan.remove if name not in removed)  # once per installation
            if remove:  # the other onnxruntime build would shadow this one (same module name)
                run_logged(pip_uninstall_command(python, remove), env, self._emit, self.isCanceled)
                removed.update(remove)
            self.setProgress(max(10.0, self.progress()))
            pip = pip_install_command(python, plan, self.wheelhouse)
            self._emit(f"$ {' '.join(pip)}")
            start = len(self.lines)
            code = run_logged(pip, env, self._emit, self.isCanceled)
            if self.isCanceled():
                self.error = "installation cancelled"
                return False
            if code != 0:
                self.error = self._pip_error(code, plan, self.lines[start:])
                return False
        self.setProgress(90)
        self._emit("$ " + " ".join(check_command(python)))
        self.status = check_engine(self._emit)
        if not self.status.ok:
            self.error = self.status.message
            return False
        self.setProgress(100)
        return True

    def _pip_error(self, code: int, plan: InstallPlan, lines: list[str]) -> str:
        if offline_failure(lines):
            where = f"the wheel folder {self.wheelhouse}" if self.wheelhouse else "the Python package index"
            return (
                f"pip could not get the packages from {where}. Connect to the internet, or choose a folder "
                f"of wheels made on a connected machine with `pip download -r {plan.requirements.name} "
                "-d FOLDER` (see the help)."
            )
        if any("THESE PACKAGES DO NOT MATCH THE HASHES" in line for line in lines):
            return (
                "a downloaded package is not the one that was tested (its hash differs); nothing was changed"
            )
        return f"pip failed (exit code {code}); the log is in {log_path()}"


def _count_packages(requirements: Path) -> int:
    """Packages a requirements or lock file names (lines starting with a name)."""
    try:
        lines = requirements.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if line[:1].isalnum() and "==" in line)


class InstallEvents(QObject):
    """Announces the running installation to every part of the plugin (dock banner, dialogs)."""

    started = pyqtSignal(object)  # the InstallTask
    progress = pyqtSignal(float)
    finished = pyqtSignal(object)  # the InstallTask, ended (task.error empty when it succeeded)


_EVENTS: dict[str, InstallEvents] = {}
_RUNNING: dict[str, InstallTask] = {}


def install_events() -> InstallEvents:
    """The one InstallEvents of this QGIS session (created on first use, on the GUI thread)."""
    if "events" not in _EVENTS:
        _EVENTS["events"] = InstallEvents()
    return _EVENTS["events"]


def running_install() -> InstallTask | None:
    """The installation running now, if any."""
    return _RUNNING.get("task")


def start_install(
    wheelhouse: str | None = None, plans: list[InstallPlan] | None = None, add_task: Callable | None = None
) -> InstallTask | None:
    """Start an installation in the background; None (nothing started) while another one runs."""
    if running_install() is not None:
        return None
    task = InstallTask(wheelhouse, plans)
    events = install_events()
    _RUNNING["task"] = task

    def ended() -> None:
        if _RUNNING.get("task") is task:
            del _RUNNING["task"]
        events.finished.emit(task)

    task.progressChanged.connect(events.progress.emit)
    task.taskCompleted.connect(ended)
    task.taskTerminated.connect(ended)
    events.started.emit(task)
    (add_task or QgsApplication.taskManager().addTask)(task)
    return task


def gpu_engine(status: EngineStatus | None) -> bool:
    """True when the checked engine runs the GPU build of ONNX Runtime (it offers CUDA, usable or not)."""
    return status is not None and "CUDAExecutionProvider" in status.providers


def install_plans(gpu: bool, training: bool, status: EngineStatus | None = None) -> list[InstallPlan]:
    """The engine (CPU or GPU), then training support for that same build if asked; the engine step is
    skipped when only training is added to an engine that passed its check and already is that build."""
    engine = plan_install(gpu=gpu)
    if not training:
        return [engine]
    extra = plan_install(gpu=engine.gpu, training=True)  # GPU training only where the GPU engine exists
    if status is not None and status.ok and gpu_engine(status) == engine.gpu:
        return [extra]
    return [engine, extra]


def training_installed(timeout: float = 60) -> bool:
    """True when the engine can import torch (checked by running the engine's Python, not in QGIS)."""
    from .engine_env import engine_python

    python = engine_python()
    if not python.is_file():
        return False
    try:
        done = subprocess.run(
            [str(python), "-c", "import torch, sklearn, scipy"], env=engine_env(), capture_output=True,
            timeout=timeout, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class TrainingCheckTask(QgsTask):
    """`training_installed()` off the GUI thread; `on_done(bool)` on the GUI thread (for the Fine-tune tab:
    check when the tab opens, then offer `deps_dialog.open_installer(training=True)` when it is False)."""

    def __init__(self, on_done: Callable[[bool], None]) -> None:
        super().__init__("Contrasat: check training support", QgsTask.Flags())
        self.on_done = on_done
        self.present = False

    def run(self) -> bool:
        self.present = training_installed()
        return True

    def finished(self, result: bool) -> None:  # noqa: ARG002
        self.on_done(self.present)
