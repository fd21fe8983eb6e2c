"""The commit window (issue 22, case 1): a fault between ANY two steps of a commit leaves every output either
all old or all new, never missing, and nothing hidden behind once the next run has started.

Faults are injected through `output_set._step`, which the commit calls between its steps, not by timing:
- an exception there (what a failed rename or an error does) must roll back in the same process;
- a real SIGINT/SIGTERM there must be held until the commit ends (the outputs are all new, then the job
  reports the cancel);
- `os._exit` there (SIGKILL, a power cut) in a child process must be recovered by the next run that names
  an output in the folder.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from contrasat.models import output_set
from contrasat.models.output_set import OutputSet
from hostile_cases import snapshot

OLD = {"map.tif": b"old map", "stats.csv": b"old stats"}
NEW = {"map.tif": b"new map", "stats.csv": b"new stats"}


def _steps(existing: tuple[str, ...]) -> list[str]:
    """Every step name a two-output commit passes, recorded from a real commit."""
    seen: list[str] = []
    folder = Path(__import__("tempfile").mkdtemp())
    outputs = _planned(folder, existing)
    original = output_set._step
    output_set._step = seen.append
    try:
        outputs.commit()
    finally:
        output_set._step = original
    return seen


def _planned(folder: Path, existing: tuple[str, ...]) -> OutputSet:
    """Two outputs whose temporaries hold the new contents; `existing` targets hold old contents."""
    for name in existing:
        (folder / name).write_bytes(OLD[name])
    outputs = OutputSet()
    for name, kind in (("map.tif", "raster"), ("stats.csv", "table")):
        planned = outputs.add(name, folder / name, kind)
        planned.temp.write_bytes(NEW[name])
    return outputs


def _state(folder: Path) -> dict[str, bytes]:
    """The visible files and their bytes (hidden partials, backups and journals are checked apart)."""
    return {k: v for k, v in snapshot(folder).items() if isinstance(v, bytes) and not k.startswith(".")}


def _expect_old(folder: Path, existing: tuple[str, ...]) -> dict[str, bytes]:
    return {name: OLD[name] for name in existing}


EXISTING = [("map.tif", "stats.csv"), ("map.tif",), ()]
CASES = [
    pytest.param(existing, at, id=f"{len(existing)}-existing-{at.replace(' ', '-')}")
    for existing in EXISTING
    for at in _steps(existing)
]


def test_the_commit_has_the_steps_the_tests_cut():
    steps = _steps(("map.tif", "stats.csv"))
    assert steps == ["journal", "backup 0", "backup 1", "install 0", "install 1", "committed", "clean up"]


@pytest.mark.parametrize(("existing", "at"), CASES)
def test_an_error_between_two_steps_rolls_back(tmp_path, monkeypatch, existing, at):
    outputs = _planned(tmp_path, existing)

    def fault(name):
        if name == at:
            raise OSError(5, "injected I/O error")

    monkeypatch.setattr(output_set, "_step", fault)
    if at == "clean up":  # past the commit point: the job succeeded, only tidying failed
        with pytest.raises(OSError):
            outputs.commit()
        OutputSet().add("map", tmp_path / "map.tif", "raster")  # the next run tidies up
        assert _state(tmp_path) == NEW
        return
    with pytest.raises(output_set.OutputError, match="could not move the outputs into place"):
        outputs.commit()
    assert _state(tmp_path) == _expect_old(tmp_path, existing)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("at", ["backup 0", "backup 1", "install 0", "install 1"])
def test_a_signal_during_the_commit_waits_for_its_end(tmp_path, monkeypatch, sig, at):
    outputs = _planned(tmp_path, ("map.tif", "stats.csv"))
    monkeypatch.setattr(output_set, "_step", lambda name: signal.raise_signal(sig) if name == at else None)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            outputs.commit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert _state(tmp_path) == NEW  # the renames all happened; the cancel came after them


CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from contrasat.models import output_set
    from contrasat.models.output_set import OutputSet

    folder, at, existing = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    old = {"map.tif": b"old map", "stats.csv": b"old stats"}
    new = {"map.tif": b"new map", "stats.csv": b"new stats"}
    for name in existing:
        (folder / name).write_bytes(old[name])
    outputs = OutputSet()
    for name, kind in (("map.tif", "raster"), ("stats.csv", "table")):
        outputs.add(name, folder / name, kind).temp.write_bytes(new[name])
    output_set._step = lambda name: os._exit(9) if name == at else None
    outputs.commit()
    """
)


@pytest.mark.parametrize(("existing", "at"), CASES)
def test_a_kill_between_two_steps_is_recovered_by_the_next_run(tmp_path, existing, at):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), at, *existing], capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    # the next run names only the statistics; the journal makes it recover the map as well
    OutputSet().add("statistics", tmp_path / "stats.csv", "table")
    state = _state(tmp_path)
    committed = at == "clean up"
    assert state == (NEW if committed else _expect_old(tmp_path, existing)), (at, sorted(state))
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    if at == "journal":  # killed before the commit began: the map's partial waits for a run that names it
        assert hidden == [n for n in hidden if n.startswith(".map.tif.") and ".partial" in n]
        OutputSet().add("map", tmp_path / "map.tif", "raster")
        hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == []


def test_a_journal_of_a_live_run_is_left_alone(tmp_path):
    journal = tmp_path / f"{output_set.JOURNAL_PREFIX}1.1{output_set.JOURNAL_SUFFIX}"
    (tmp_path / "map.tif").write_bytes(b"a map being written")
    journal.write_text(json.dumps({"state": "renaming", "entries": []}))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = journal.with_name(f"{output_set.JOURNAL_PREFIX}{alive.pid}.1{output_set.JOURNAL_SUFFIX}")
        journal.rename(live)
        assert output_set.recover_commits(tmp_path) == []
        assert live.exists()
    finally:
        alive.kill()
        alive.wait()
    assert output_set.recover_commits(tmp_path) == [live]
    assert not live.exists()
