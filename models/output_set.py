"""All outputs of one job, checked before anything runs and committed together at the end: all or none.

Every output is written to a hidden temporary name in its target's folder (`.NAME.PID.partial.EXT`),
re-opened and verified when the job ends, and only then renamed into place, all of them together. A failed,
cancelled or killed job leaves every existing file as it was; partials left by a killed run (SIGKILL, power
cut) are removed by the next run that writes the same output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
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
}
FORMAT_NAMES = {
    "raster": "a GeoTIFF (.tif or .tiff)",
    "vector": ".gpkg or .geojson",
    "table": ".csv",
    "model": "an ONNX model (.onnx)",
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
        folder = target.parent
        if not folder.is_dir():
            raise OutputError(f"{label} folder does not exist: {given.parent}")
        if target.exists() or target.is_symlink():
            try:
                mode = target.stat().st_mode
            except OSError:
                mode = 0
            if stat.S_ISDIR(mode):
                raise OutputError(f"{label} path is a folder, not a file: {given}")
            if not stat.S_ISREG(mode):
                raise OutputError(
                    f"{label} path exists and is not a regular file (device, pipe or socket): {given}"
                )
            if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                raise OutputError(f"{label} {given.name} exists and is read-only: not replaced")
        for p in self.inputs:
            if same_file(target, p):
                raise OutputError(f"{label} {given.name} would overwrite the input {p}")
        for other in self.outputs:
            if same_file(target, other.target):
                raise OutputError(f"{label} and {other.label} are the same file: {given}")
        clean_stale_partials(target)
        temp = folder / f".{target.name}.{os.getpid()}{PARTIAL}{suffix}"
        try:  # proves the folder is writable (also for root in an immutable or read-only folder)
            fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
            os.unlink(temp)
        except FileExistsError:
            raise OutputError(f"{label} {given.name} is being written by this process already") from None
        except OSError as exc:
            reason = (
                "not writable" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else one_line(exc)
            )
            raise OutputError(f"{label} folder is {reason}: {folder}") from exc
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


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()


def _remove_with_sidecars(path: Path) -> None:
    for side in SIDECARS:
        _remove(Path(str(path) + side))


def _rename_all(outputs: list[PlannedOutput]) -> None:
    """Rename every temporary over its target; if one rename fails, put every old target back."""
    backups: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for out in outputs:
            if out.target.exists():
                backup = out.target.parent / f".{out.target.name}.{os.getpid()}{BACKUP}{out.target.suffix}"
                os.replace(out.target, backup)
                backups.append((backup, out.target))
        for out in outputs:
            os.replace(out.temp, out.target)
            done.append(out.target)
    except BaseException as exc:  # also Ctrl-C between two renames: put every old target back
        for target in done:
            _remove(target)
        for backup, target in backups:
            with contextlib.suppress(OSError):
                os.replace(backup, target)
        if isinstance(exc, OSError):
            raise OutputError(f"could not move the outputs into place: {one_line(exc)}") from exc
        raise
    for backup, _ in backups:
        _remove(backup)


def clean_stale_partials(target: Path) -> list[Path]:
    """Remove partials (and restore backups) of `target` left by runs that no longer exist; return them."""
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
                    os.replace(leftover, target)  # a commit was cut off between its two renames
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
