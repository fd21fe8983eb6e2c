"""The hashed lock files agree with the pins they were made from (requirements/runtime.txt, gpu.txt).

Fails when someone edits runtime.txt without running scripts/lock_requirements.sh: the plugin and CI
install from the lock, so a pin missing from it would silently not be what users get.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(path: Path) -> dict[str, str]:
    """name -> version of the `name==version` lines of a requirements file (comments ignored)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.split("#", 1)[0].strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def locked(path: Path) -> dict[str, list[str]]:
    """name==version -> its sha256 hashes, from a pip-compile --generate-hashes lock."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = f"{match.group(1).lower()}=={match.group(2)}"
            entries[current] = []
        elif current and "--hash=sha256:" in line:
            entries[current].append(line.split("--hash=sha256:", 1)[1].strip(" \\"))
    return entries


def expected_top_level(folder: Path, lock: str) -> dict[str, str]:
    """The top-level pins a lock must hold: runtime.txt, with onnxruntime replaced by gpu.txt for the GPU."""
    top = pins(folder / "runtime.txt")
    if lock in ("train-engine.lock", "train-engine-gpu.lock"):
        top.update(pins(folder / "train-engine.txt"))
    if lock in ("runtime-gpu.lock", "train-engine-gpu.lock"):
        top.pop("onnxruntime")
        top.update(pins(folder / "gpu.txt"))
    return top


def disagreements(folder: Path, lock: str) -> list[str]:
    """Each pin of the sources that the lock does not hold at the same version."""
    versions = {entry.split("==")[0]: entry.split("==")[1] for entry in locked(folder / lock)}
    return [
        f"{name}=={version} is {versions.get(name)!r} in {lock}"
        for name, version in expected_top_level(folder, lock).items()
        if versions.get(name) != version
    ]


LOCKS = ["runtime.lock", "runtime-gpu.lock", "train-engine.lock", "train-engine-gpu.lock"]


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_holds_every_pin_at_its_version_with_hashes(lock):
    assert disagreements(REQUIREMENTS, lock) == [], "run scripts/lock_requirements.sh"
    entries = locked(REQUIREMENTS / lock)
    assert all(len(h) == 64 for hashes in entries.values() for h in hashes)
    unhashed = [entry for entry, hashes in entries.items() if not hashes]
    assert not unhashed, f"{lock} has packages without a hash: {unhashed}"
    # transitive dependencies are locked too (the issue: protobuf, python-dateutil, pillow floated)
    names = {entry.split("==")[0] for entry in entries}
    assert {"protobuf", "python-dateutil", "pillow", "scikit-learn", "pydantic", "pydantic-core"} <= names
    assert len(entries) > len(expected_top_level(REQUIREMENTS, lock))


def test_every_lock_pins_exactly_one_onnxruntime_build():
    """Both builds in one engine clash (same module name): each lock, the GPU ones too, holds only one."""
    assert sorted(p.name for p in REQUIREMENTS.glob("*.lock")) == sorted(LOCKS)  # a new lock is checked too
    for lock in LOCKS:
        builds = [e.split("==")[0] for e in locked(REQUIREMENTS / lock) if e.startswith("onnxruntime")]
        assert builds == (["onnxruntime-gpu"] if "gpu" in lock else ["onnxruntime"]), lock


def test_gpu_lock_differs_from_the_cpu_lock_only_in_onnxruntime():
    cpu = set(locked(REQUIREMENTS / "runtime.lock"))
    gpu = set(locked(REQUIREMENTS / "runtime-gpu.lock"))
    assert {e.split("==")[0] for e in cpu ^ gpu} == {"onnxruntime", "onnxruntime-gpu"}


def test_an_edited_pin_is_caught(tmp_path):
    """The check itself: a runtime.txt whose pin the lock does not hold is reported, by name."""
    for name in ("runtime.lock", "gpu.txt"):
        (tmp_path / name).write_text((REQUIREMENTS / name).read_text(encoding="utf-8"), encoding="utf-8")
    text = (REQUIREMENTS / "runtime.txt").read_text(encoding="utf-8")
    (tmp_path / "runtime.txt").write_text(text.replace("shapely==", "shapely==9") + "tzlocal==5.0\n")
    found = disagreements(tmp_path, "runtime.lock")
    assert len(found) == 2 and found[0].startswith("shapely==9") and found[1].startswith("tzlocal==5.0")
