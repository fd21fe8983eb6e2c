"""The engine: the Python environment the plugin owns, and the `python -m contrasat` processes run on it.

Nothing here imports QGIS, GDAL or the runtime (only the pure-Python job table): jobs run in a separate process so that no second
GDAL/GEOS/PROJ is ever loaded into QGIS's process (see docs/qgis.md). This module builds command lines,
the process environment, and reads the engine's JSON progress lines (their protocol: progress.py).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import jobs
from ..progress import CANCELLED, CANCELLED_EXIT, DONE, ERROR, FINAL_EVENTS, MESSAGE, parse_event

CRASHED = "crashed"  # an engine process that ended without a final event

# Not resolved: a symlinked checkout must keep its `contrasat` folder name (it is the package name).
PLUGIN_DIR = Path(__file__).absolute().parent.parent
PACKAGE = "contrasat"
ENV_SUBDIR = "engine-env"
# Variables QGIS (or the shell it was started from) may set that would make the engine's Python or its
# own GDAL/PROJ pick up someone else's files.
DROPPED_VARIABLES = (
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "VIRTUAL_ENV", "CONDA_PREFIX",
    "GDAL_DATA", "GDAL_DRIVER_PATH", "PROJ_LIB", "PROJ_DATA", "__PYVENV_LAUNCHER__",
)  # fmt: skip
TAIL_LINES = 20  # engine stderr lines kept for the error message of a crash


def engine_home(settings_dir: str | Path) -> Path:
    """`<QGIS profile settings folder>/contrasat`: outside the plugin folder, so plugin updates keep it."""
    return Path(settings_dir) / PACKAGE


def env_python(env_dir: str | Path) -> Path:
    """The interpreter of a venv (POSIX or Windows layout)."""
    env_dir = Path(env_dir)
    windows = env_dir / "Scripts" / "python.exe"
    return windows if os.name == "nt" else env_dir / "bin" / "python"


def _is_python(path: str | Path | None) -> bool:
    if not path:
        return False
    p = Path(path)
    return p.is_file() and p.name.lower().startswith("python") and os.access(p, os.X_OK)


def base_python() -> str | None:
    """The real interpreter QGIS's Python is built on (inside QGIS `sys.executable` is the qgis binary).

    Tried in order: the base executable of this interpreter, `sys.executable` when it is a Python,
    `<base_exec_prefix>/bin/pythonX.Y` (or python.exe on Windows), then pythonX.Y / python3 on PATH.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = Path(sys.base_exec_prefix)
    candidates = [
        getattr(sys, "_base_executable", None),
        sys.executable,
        prefix / "bin" / f"python{version}",
        prefix / "bin" / "python3",
        prefix / "python.exe",
        prefix / "python3.exe",
        shutil.which(f"python{version}"),
        shutil.which("python3"),
    ]
    return next((str(c) for c in candidates if _is_python(c)), None)


def package_root(home: Path) -> Path:
    """The folder to put on the engine's PYTHONPATH so that `import contrasat` finds this plugin.

    The plugin folder is the package; when it was unpacked under another name (e.g. a GitHub archive),
    a `contrasat` symlink to it is kept in the engine's home.
    """
    if PLUGIN_DIR.name == PACKAGE:
        return PLUGIN_DIR.parent
    root = home / "package"
    link = root / PACKAGE
    root.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and link.resolve() == PLUGIN_DIR.resolve()):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(PLUGIN_DIR, target_is_directory=True)
    return root


def engine_environ(pythonpath: Path | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The engine's environment: this process's, without Python/GDAL/PROJ overrides, plus our PYTHONPATH."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in DROPPED_VARIABLES}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines must arrive as they are written
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONNOUSERSITE"] = "1"  # ~/.local packages would shadow the pinned ones
    return env


# ---- commands ----------------------------------------------------------------------------------------


def venv_command(base: str, env_dir: Path) -> list[str]:
    """Create the managed environment, isolated from system site packages (Debian's attrs, GDAL, ...)."""
    return [base, "-m", "venv", "--clear", str(env_dir)]


def table_job(name: str) -> jobs.Job:
    """The job of the table (models/jobs.py) by its algorithm name (map_floods) or CLI name (map-floods)."""
    try:
        return jobs.job(name)
    except KeyError:
        raise ValueError(f"unknown job {name!r}") from None


def is_set(value: Any) -> bool:
    """A value that becomes a command-line option (0 is a value; None, '' and [] are not)."""
    return value is not None and value != "" and value != []


def cli_arguments(job: jobs.Job, values: dict[str, Any]) -> list[str]:
    """The CLI options for `values` (table parameter name -> value), in the table's order.

    The one mapping Param -> option used by every front end of the plugin (dock tasks and Processing).
    A name the job does not have is refused: it would otherwise be dropped without a word.
    """
    unknown = set(values) - {p.name for p in job.params}
    if unknown:
        raise ValueError(f"{job.name} has no parameter {', '.join(sorted(unknown))}")
    return [word for p in job.params if is_set(values.get(p.name)) for word in p.arguments(values[p.name])]


def job_command(
    python: str | Path, job: str, values: dict[str, Any], run: dict[str, Any] | None = None
) -> list[str]:
    """`python -m contrasat <job> ... --progress json` for one job.

    `values`: table parameter name -> value (inputs, outputs, aoi as a file path, model, ...); `run`: the
    saved execution settings (tile, overlap, batch, provider, threads), used for the execution settings the
    job has and `values` does not set (fine-tune's torch threads are not ONNX Runtime's).
    """
    entry = table_job(job)
    names = {p.name for p in entry.execution_params}
    merged = {k: v for k, v in (run or {}).items() if k in names and is_set(v)}
    merged.update({k: v for k, v in values.items() if is_set(v) or k not in merged})
    return [str(python), "-m", PACKAGE, entry.name, *cli_arguments(entry, merged), "--progress", "json"]


def signal_name(returncode: int) -> str:
    """'signal 11 (SIGSEGV)' for a negative return code."""
    try:
        return f"signal {-returncode} ({signal.Signals(-returncode).name})"
    except ValueError:
        return f"signal {-returncode}"


@dataclass
class EngineOutcome:
    """How an engine process ended. `status` is one of the protocol's final events or CRASHED."""

    status: str
    returncode: int | None
    result: dict[str, Any] = field(default_factory=dict)  # the DONE event's summary
    message: str = ""  # error text for the user
    messages: list[dict[str, Any]] = field(default_factory=list)  # 'message' events (level, text)
    tail: list[str] = field(default_factory=list)  # last non-protocol stderr lines


class _Reader:
    """What the engine's stderr said so far: the final event, its notes and its last other lines."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None] | None) -> None:
        self.on_event = on_event
        self.final: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def read(self, line: str) -> None:
        event = parse_event(line)
        if event is None:
            if line.strip():
                self.tail.append(line)
            return
        if event["event"] in FINAL_EVENTS:
            self.final = event
        elif event["event"] == MESSAGE:
            self.messages.append(event)
        if self.on_event is not None:
            self.on_event(event)


class _Stopper:
    """Cancel: SIGTERM once `is_cancelled()` turns true, SIGKILL when the process outlives `grace` seconds."""

    def __init__(self, proc: subprocess.Popen, is_cancelled: Callable[[], bool] | None, grace: float) -> None:
        self.proc, self.is_cancelled, self.grace = proc, is_cancelled, grace
        self.terminated_at: float | None = None

    def check(self) -> None:
        if self.terminated_at is None:
            if self.is_cancelled is not None and self.is_cancelled():
                self.proc.terminate()
                self.terminated_at = time.monotonic()
        elif time.monotonic() - self.terminated_at > self.grace:
            self.proc.kill()


def _pump(stream: Any, sink: Callable[[str], None]) -> threading.Thread:
    """A thread passing each line of `stream` to `sink`."""

    def run() -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        stream.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_engine(
    command: list[str],
    env: dict[str, str] | None = None,
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    cwd: str | Path | None = None,
    terminate_grace: float = 15.0,
) -> EngineOutcome:
    """Run one engine process to its end, passing each progress event to `on_event`.

    Cancel (`is_cancelled()` turning true) sends SIGTERM, which the CLI turns into a clean stop (exit 130,
    temporary files removed); a process that ignores it is killed after `terminate_grace` seconds.
    A process that dies without a final event (a crash in ONNX Runtime, an OOM kill) is reported with its
    last stderr lines; it can never take QGIS down.
    """
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, text=True, encoding="utf-8", errors="replace", bufsize=1,
        )  # fmt: skip
    except OSError as exc:
        return EngineOutcome(CRASHED, None, message=f"cannot start the engine ({command[0]}): {exc}")
    lines: queue.Queue[str] = queue.Queue()
    stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
    err_thread = _pump(proc.stderr, lines.put)
    out_thread = _pump(proc.stdout, stdout_tail.append)
    reader, stopper = _Reader(on_event), _Stopper(proc, is_cancelled, terminate_grace)
    while True:
        try:
            reader.read(lines.get(timeout=0.1))
        except queue.Empty:
            if proc.poll() is not None and not err_thread.is_alive() and lines.empty():
                break
        stopper.check()
    proc.wait()
    out_thread.join(timeout=1)
    tail = list(reader.tail) or list(stdout_tail)
    return _outcome(proc.returncode, reader.final, reader.messages, tail, stopper.terminated_at is not None)


def _outcome(
    code: int, final: dict[str, Any] | None, messages: list[dict[str, Any]], tail: list[str], terminated: bool
) -> EngineOutcome:
    kind = (final or {}).get("event")
    if kind == DONE and code >= 0:  # batch exits 1 after its summary when a scene failed
        result = final.get("result")
        return EngineOutcome(DONE, code, result if isinstance(result, dict) else {}, "", messages, tail)
    if kind == CANCELLED or (terminated and code in (CANCELLED_EXIT, -signal.SIGTERM, -signal.SIGKILL)):
        return EngineOutcome(CANCELLED, code, messages=messages, tail=tail)
    if kind == ERROR:
        text = str(final.get("message") or "the job failed")
        return EngineOutcome(ERROR, code, message=text, messages=messages, tail=tail)
    how = signal_name(code) if code < 0 else f"exit code {code}"
    last = "\n".join(tail[-8:])
    text = f"the engine stopped unexpectedly ({how})" + (f":\n{last}" if last else "")
    return EngineOutcome(CRASHED, code, message=text, messages=messages, tail=tail)
