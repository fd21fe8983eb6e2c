"""All outputs of one job, checked before anything runs and committed together at the end: all or none.

Every output is written to a hidden temporary name in its target's folder (`.NAME.PID.partial.EXT`),
re-opened and verified when the job ends, and only then renamed into place, all of them together. A failed,
cancelled or killed job leaves every existing file as it was; partials left by a killed run (SIGKILL, power
cut) are removed by the next run that writes the same output.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import OutputError

# Allowed extensions per kind of output; a shapefile is several files and could not be committed atomically.
FORMATS: dict[str, tuple[str, ...]] = {
    "raster": (".tif", ".tiff"),
    "vector": (".gpkg", ".geojson", ".json"),
    "table": (".csv",),
    "model": (".onnx",),
    "figure": (".png",),
}
FORMAT_NAMES = {
    "raster": "a GeoTIFF (.tif or .tiff)",
    "vector": ".gpkg or .geojson",
    "table": ".csv",
    "model": "an ONNX model (.onnx)",
    "figure": "a PNG image (.png)",
}
VECTOR_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
PARTIAL = ".partial"
BACKUP = ".backup"
SIDECARS = ("", ".aux.xml", "-journal", "-wal", "-shm", ".ovr", ".msk")


def _describe_errno(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only or protected folder)"
    return exc.strerror or str(exc)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text, short enough for a one-line error message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return _describe_errno(exc)
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if line.startswith(("b'", 'b"')) and line.endswith(line[1]):  # GDAL messages passed on as bytes
        line = line[2:-1]
    return line[:200]


@contextlib.contextmanager
def writing(label: str, path: Path):
    """Turn any failure while writing an output (full disk, I/O, GDAL/OGR errors) into one OutputError line."""
    try:
        yield
    except OutputError:
        raise
    except Exception as exc:
        from .errors import ContrasatError

        if isinstance(exc, ContrasatError):
            raise
        raise OutputError(f"could not write {label} {path.name}: {one_line(exc)}") from exc


def same_file(a: Path, b: Path) -> bool:
    """True when two paths name the same file: after resolving symlinks and `..`, or as hard links."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        return False
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)
    return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own earlier partials belong to a job that has ended
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class PlannedOutput:
    """One output: what it is, where it goes, where it is written first and how to verify it."""

    label: str
    kind: str  # 'raster', 'vector' or 'table'
    target: Path  # the final path (symlinks resolved: a linked output keeps its link)
    temp: Path
    verify: Callable[[Path], None] | None = None


@dataclass
class OutputSet:
    """The outputs of one job. Use `add` for each output (checks run at once), then `commit` or `discard`."""

    inputs: list[Path] = field(default_factory=list)
    outputs: list[PlannedOutput] = field(default_factory=list)

    def check_inputs(self, paths: Iterable[str | Path | None]) -> None:
        """Remember input files (and a raster's sidecars/VRT sources) no output may ever replace."""
        for p in paths:
            if p is None:
                continue
            path = Path(p)
            self.inputs.append(path)
            for out in self.outputs:
                if same_file(out.target, path):
                    raise OutputError(f"{out.label} {out.target.name} would overwrite the input {path}")

    def add(self, label: str, path: str | Path, kind: str) -> PlannedOutput:
        """Check one output path (format, folder, existing target, clashes) and reserve its temporary name."""
        given = Path(path)
        if str(path).strip() == "":
            raise OutputError(f"{label} path is empty")
        suffix = given.suffix.lower()
        if suffix not in FORMATS[kind]:
            what = f"'{given.suffix}'" if given.suffix else "no extension"
            raise OutputError(f"{label} {given.name} has {what}: it must be {FORMAT_NAMES[kind]}")
        target = given.resolve() if given.is_symlink() else given.absolute()
        if not target.parent.is_dir():
            raise OutputError(f"{label} folder does not exist: {given.parent}")
        _check_existing_target(label, given, target)
        for p in self.inputs:
            if same_file(target, p):
                raise OutputError(f"{label} {given.name} would overwrite the input {p}")
        for other in self.outputs:
            if same_file(target, other.target):
                raise OutputError(f"{label} and {other.label} are the same file: {given}")
        clean_stale_partials(target)
        temp = target.parent / f".{target.name}.{os.getpid()}{PARTIAL}{suffix}"
        _prove_writable(label, given, temp)
        planned = PlannedOutput(label=label, kind=kind, target=target, temp=temp)
        self.outputs.append(planned)
        return planned

    def temp(self, label: str) -> Path:
        return next(o.temp for o in self.outputs if o.label == label)

    def discard(self) -> None:
        """Remove every temporary of this job (the targets are untouched)."""
        for out in self.outputs:
            _remove_with_sidecars(out.temp)

    def commit(self) -> None:
        """Verify every temporary, then rename all of them into place; on any failure, change nothing."""
        try:
            for out in self.outputs:
                if not out.temp.is_file():
                    raise OutputError(f"{out.label} {out.target.name} was not written")
                try:
                    if out.verify is not None:
                        out.verify(out.temp)
                except OutputError:
                    raise
                except Exception as exc:
                    raise OutputError(
                        f"{out.label} {out.target.name} is incomplete after writing ({one_line(exc)})"
                    ) from exc
                for side in SIDECARS[1:]:
                    _remove(Path(str(out.temp) + side))
            _rename_all(self.outputs)
        except BaseException:
            self.discard()
            raise


def _check_existing_target(label: str, given: Path, target: Path) -> None:
    """An existing target may be replaced only when it is a writable regular file."""
    if not (target.exists() or target.is_symlink()):
        return
    try:
        mode = target.stat().st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        raise OutputError(f"{label} path is a folder, not a file: {given}")
    if not stat.S_ISREG(mode):
        raise OutputError(f"{label} path exists and is not a regular file (device, pipe or socket): {given}")
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise OutputError(f"{label} {given.name} exists and is read-only: not replaced")


def _prove_writable(label: str, given: Path, temp: Path) -> None:
    """Create and remove the temporary: proves the folder is writable (also for root in an immutable or
    read-only folder) and that no other output of this process has reserved it."""
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        os.unlink(temp)
    except FileExistsError:
        raise OutputError(f"{label} {given.name} is being written by this process already") from None
    except OSError as exc:
        reason = "not writable" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else one_line(exc)
        raise OutputError(f"{label} folder is {reason}: {temp.parent}") from exc


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()


def _remove_with_sidecars(path: Path) -> None:
    for side in SIDECARS:
        _remove(Path(str(path) + side))


# ------------------------------------------------------------------------------------- the crash-safe commit
# The commit is a sequence of renames that must not be cut in two: a journal naming every target, backup and
# temporary is written (fsynced) before the first rename, SIGINT/SIGTERM are held until the last one, and the
# journal says "committed" before any backup is removed. A run killed anywhere (SIGKILL, power cut) leaves a
# journal from which the next run naming an output in that folder restores the old files or finishes the new.
JOURNAL_PREFIX = ".contrasat-commit."
JOURNAL_SUFFIX = ".json"
_active_journals: set[Path] = set()  # journals of commits running in this process (batch threads)
_active_lock = threading.Lock()


def _step(name: str) -> None:
    """Called between any two steps of a commit; tests replace it to inject a fault or a signal there."""


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM (Ctrl-C, the plugin's cancel) while the block runs, then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only: a worker thread is never interrupted
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)  # now handled as usual: Ctrl-C raises KeyboardInterrupt here


def _journal_paths(outputs: list[PlannedOutput]) -> list[Path]:
    folders = dict.fromkeys(out.target.parent for out in outputs)
    token = f"{os.getpid()}.{threading.get_ident()}"
    return [folder / f"{JOURNAL_PREFIX}{token}{JOURNAL_SUFFIX}" for folder in folders]


def _write_journal(paths: list[Path], state: str, entries: list[dict[str, str | None]]) -> None:
    """Write (and fsync) the same journal into every folder the commit touches."""
    text = json.dumps({"state": state, "entries": entries}, indent=1)
    for path in paths:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _rename_all(outputs: list[PlannedOutput]) -> None:
    """Rename every temporary over its target, all or none, through a journal (see the section comment)."""
    entries: list[dict[str, str | None]] = []
    for out in outputs:
        backup = out.target.parent / f".{out.target.name}.{os.getpid()}{BACKUP}{out.target.suffix}"
        entries.append(
            {
                "target": str(out.target),
                "temp": str(out.temp),
                "backup": str(backup) if out.target.exists() else None,
            }
        )
    journals = _journal_paths(outputs)
    with _active_lock:
        _active_journals.update(journals)
    try:
        with _signals_held():
            _commit_steps(journals, entries)
    finally:
        with _active_lock:
            _active_journals.difference_update(journals)


def _commit_steps(journals: list[Path], entries: list[dict[str, str | None]]) -> None:
    try:
        _step("journal")
        _write_journal(journals, "renaming", entries)
        for i, entry in enumerate(entries):
            if entry["backup"]:
                _step(f"backup {i}")
                os.replace(entry["target"], entry["backup"])
        for i, entry in enumerate(entries):
            _step(f"install {i}")
            os.replace(entry["temp"], entry["target"])
        _step("committed")
        _write_journal(journals, "committed", entries)
    except BaseException as exc:  # any failure before the commit point: put every old target back
        _roll_back(entries)
        for journal in journals:
            _remove(journal)
        if isinstance(exc, OSError):
            raise OutputError(f"could not move the outputs into place: {one_line(exc)}") from exc
        raise
    _step("clean up")
    _finish(journals, entries)


def _roll_back(entries: list[dict[str, str | None]]) -> None:
    """Undo a commit that did not reach its commit point: new files out, old files back."""
    for entry in entries:
        target, temp, backup = Path(entry["target"]), Path(entry["temp"]), entry["backup"]
        installed = not temp.exists() and (target.exists() if backup is None else Path(backup).exists())
        if installed:
            _remove(target)
        if backup is not None and Path(backup).exists():
            with contextlib.suppress(OSError):
                os.replace(backup, target)


def _finish(journals: list[Path], entries: list[dict[str, str | None]]) -> None:
    """After the commit point: remove the backups, then the journals."""
    for entry in entries:
        if entry["backup"]:
            _remove(Path(entry["backup"]))
    for journal in journals:
        _remove(journal)


def recover_commits(folder: Path) -> list[Path]:
    """Finish or undo the commits of ended runs that left a journal in `folder`; return the journals."""
    recovered = []
    with contextlib.suppress(OSError):
        for journal in sorted(folder.glob(f"{JOURNAL_PREFIX}*{JOURNAL_SUFFIX}")):
            pid_text = journal.name[len(JOURNAL_PREFIX) :].split(".")[0]
            with _active_lock:
                active = journal in _active_journals
            if (
                active
                or not pid_text.isdigit()
                or (int(pid_text) != os.getpid() and _pid_alive(int(pid_text)))
            ):
                continue
            try:
                record = json.loads(journal.read_text(encoding="utf-8"))
                entries = record["entries"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not ours, or unreadable: leave it for a person to look at
            if record.get("state") == "committed":
                _finish([], entries)
            else:
                _roll_back(entries)
            for entry in entries:
                _remove_with_sidecars(Path(entry["temp"]))
            for copy in {Path(entry["target"]).parent for entry in entries} | {folder}:
                _remove(copy / journal.name)
            recovered.append(journal)
    return recovered


def clean_stale_partials(target: Path) -> list[Path]:
    """Recover cut-off commits, remove partials (and restore backups) of `target` left by runs that no longer
    exist; return the removed partials."""
    recover_commits(target.parent)
    removed = []
    prefix = f".{target.name}."
    with contextlib.suppress(OSError):
        for leftover in target.parent.iterdir():
            name = leftover.name
            if not name.startswith(prefix):
                continue
            pid_text, _, rest = name[len(prefix) :].partition(".")
            if not pid_text.isdigit() or not rest.startswith((PARTIAL[1:], BACKUP[1:])):
                continue
            if _pid_alive(int(pid_text)):
                continue
            if rest.startswith(BACKUP[1:]) and not target.exists():
                with contextlib.suppress(OSError):
                    os.replace(leftover, target)  # a commit of an older version cut off between its renames
                    continue
            _remove(leftover)
            removed.append(leftover)
    return removed


def verify_raster(width: int, height: int, count: int) -> Callable[[Path], None]:
    """A check that a GeoTIFF has the expected size and that every block of every band decodes."""

    def check(path: Path) -> None:
        import rasterio

        with rasterio.open(path) as src:
            if (src.width, src.height, src.count) != (width, height, count):
                raise OutputError(
                    f"{path.name} is {src.width}x{src.height}x{src.count}, expected {width}x{height}x{count}"
                )
            for _, window in src.block_windows(1):
                src.read(window=window)

    return check


def verify_vector(features: Callable[[], int]) -> Callable[[Path], None]:
    """A check that a vector file opens and holds the number of features written (known when verifying)."""

    def check(path: Path) -> None:
        import fiona

        with fiona.open(path) as src:
            found = len(src)
        if found != features():
            raise OutputError(f"{path.name} holds {found} features, {features()} were written")

    return check


def verify_table(rows: int) -> Callable[[Path], None]:
    """A check that a CSV file holds a header and `rows` data rows."""

    def check(path: Path) -> None:
        with open(path, encoding="utf-8") as fh:
            found = sum(1 for line in fh if line.strip()) - 1
        if found != rows:
            raise OutputError(f"{path.name} holds {found} rows, {rows} were written")

    return check


def verify_model(classes: int) -> Callable[[Path], None]:
    """A check that an ONNX model file loads, passes the ONNX checker and carries a card with `classes` classes."""

    def check(path: Path) -> None:
        import onnx

        from .card import read_card

        onnx.checker.check_model(str(path))
        found = len(read_card(path).classes)
        if found != classes:
            raise OutputError(f"{path.name} holds {found} classes, {classes} were written")

    return check
