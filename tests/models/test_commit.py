"""All outputs or none: full disks, incomplete files, failed renames, cancels and leftovers of killed runs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from contrasat.cli import main
from hostile_cases import ids, snapshot
from runtime_helpers import S1_SAMPLE


def _partials(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name or ".backup" in p.name]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def work(tmp_path, threshold_model):
    shutil.copy(S1_SAMPLE, tmp_path / "s1.tif")
    shutil.copy(threshold_model, tmp_path / "model.onnx")
    (tmp_path / "o.tif").write_bytes(b"previous map")
    (tmp_path / "p.tif").write_bytes(b"previous probabilities")
    return tmp_path


def _args(work, out_dir=None, *extra):
    out_dir = out_dir or work
    return ["map-floods", "--s1", str(work / "s1.tif"), "--model", str(work / "model.onnx"),
            "--out", str(out_dir / "o.tif"), *map(str, extra)]  # fmt: skip


def _tmpfs(path, size: str):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (disk-full simulation)")
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"needs permission to mount a tmpfs: {proc.stderr.decode().strip()[:100]}")


def _run_and_check(args, folder, capsys, code: int, needle: str):
    before = snapshot(folder)
    got = main(args)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert got == code, err
    assert len(err) == 1 and needle in err[0], err
    assert snapshot(folder) == before
    assert _partials(folder) == []


@pytest.mark.parametrize("case", ids("commit"))
def test_all_or_none(case, work, capsys, monkeypatch):
    import contrasat.models.output_set as output_set
    import contrasat.models.pipeline as pipeline

    if case == "disk-full-tmpfs":
        full = work / "full"
        _tmpfs(full, "200k")
        try:
            (full / "o.tif").write_bytes(b"previous map")
            (full / "p.tif").write_bytes(b"previous probabilities")
            _run_and_check(
                _args(work, full, "--probabilities", full / "p.tif"), full, capsys, 2, "contrasat: error:"
            )
        finally:
            subprocess.run(["umount", str(full)], check=True)
        return
    if case == "disk-full-polygons":

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(pipeline, "write_polygons", no_space)
        _run_and_check(
            _args(work, None, "--polygons", work / "w.gpkg"), work, capsys, 2, "no space left on device"
        )
        return
    if case == "truncated-output":
        original = pipeline._finish_extras

        def truncate_first(outputs, *args):
            original(outputs, *args)
            temp = outputs.outputs[0].temp
            temp.write_bytes(temp.read_bytes()[: temp.stat().st_size // 2])

        monkeypatch.setattr(pipeline, "_finish_extras", truncate_first)
        _run_and_check(_args(work), work, capsys, 2, "incomplete after writing")
        return
    if case == "rename-fails":
        real_replace = os.replace
        calls = []

        def flaky_replace(src, dst):
            calls.append((str(src), str(dst)))
            if ".partial" in str(src) and str(dst).endswith("p.tif"):
                raise OSError(errno.EIO, "simulated I/O error")
            return real_replace(src, dst)

        monkeypatch.setattr(output_set.os, "replace", flaky_replace)
        _run_and_check(
            _args(work, None, "--probabilities", work / "p.tif"), work, capsys, 2, "could not move"
        )
        assert any(dst.endswith("o.tif") and ".partial" in src for src, dst in calls), (
            "o.tif was renamed first"
        )
        return
    if case == "stale-partial":
        stale = work / f".o.tif.{_dead_pid()}.partial.tif"
        stale.write_bytes(b"left by a killed run")
        assert main(_args(work)) == 0
        assert not stale.exists() and (work / "o.tif").read_bytes()[:2] in (b"II", b"MM")
        return
    if case == "live-partial":
        live = work / f".o.tif.{os.getppid()}.partial.tif"
        live.write_bytes(b"another run is writing")
        assert main(_args(work)) == 0
        assert live.read_bytes() == b"another run is writing"
        return
    if case == "keyboard-interrupt":
        original = pipeline.run_tiled

        def interrupted(*args, progress=None, **kwargs):
            def press_ctrl_c(fraction):
                raise KeyboardInterrupt

            return original(*args, progress=press_ctrl_c, **kwargs)

        monkeypatch.setattr(pipeline, "run_tiled", interrupted)
        _run_and_check(_args(work, None, "--probabilities", work / "p.tif", "--tile", 64, "--overlap", 0), work,
                       capsys, 130, "contrasat: cancelled")  # fmt: skip
        return
    if case == "ctrl-c-in-commit":  # a real SIGINT delivered between the two renames into place
        monkeypatch.setattr(
            output_set,
            "_step",
            lambda name: signal.raise_signal(signal.SIGINT) if name == "install 1" else None,
        )
        assert main(_args(work, None, "--probabilities", work / "p.tif")) == 130
        assert "contrasat: cancelled" in capsys.readouterr().err
        for name in ("o.tif", "p.tif"):
            assert (work / name).read_bytes()[:2] in (b"II", b"MM"), name  # both new GeoTIFFs, none missing
        assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []
        return
    if case == "killed-in-commit":  # the real CLI killed (os._exit) after its first rename into place
        before = snapshot(work)
        child = (
            "import os, sys\nfrom contrasat.models import output_set\nfrom contrasat.cli import main\n"
            "output_set._step = lambda name: os._exit(9) if name == 'install 1' else None\n"
            "main(sys.argv[1:])\n"
        )
        args = _args(work, None, "--probabilities", work / "p.tif")
        proc = subprocess.run([sys.executable, "-c", child, *args], capture_output=True, text=True)
        assert proc.returncode == 9, proc.stderr[-2000:]
        assert not (work / "p.tif").exists() or (work / "o.tif").read_bytes() != before["o.tif"]
        # the next run names only a statistics file in the same folder: the journal restores both outputs
        next_run = ["map-floods", "--s1", work / "s1.tif", "--model", work / "model.onnx",
                    "--out", work / "n.tif", "--statistics", work / "s.csv"]  # fmt: skip
        assert main([str(a) for a in next_run]) == 0
        after = snapshot(work)
        assert after["o.tif"] == before["o.tif"] and after["p.tif"] == before["p.tif"]
        assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []
        return
    if case == "killed-in-commit-two-folders":
        (work / "b").mkdir()
        (work / "b" / "p.tif").write_bytes(b"previous probabilities elsewhere")
        before = snapshot(work)
        child = (
            "import os, sys\nfrom contrasat.models import output_set\nfrom contrasat.cli import main\n"
            "output_set._step = lambda name: os._exit(9) if name == 'install 1' else None\n"
            "main(sys.argv[1:])\n"
        )
        args = _args(work, None, "--probabilities", work / "b" / "p.tif")
        proc = subprocess.run([sys.executable, "-c", child, *args], capture_output=True, text=True)
        assert proc.returncode == 9, proc.stderr[-2000:]
        # the next run writes only into folder b: the journal there puts o.tif (folder a) back too
        next_run = [
            "map-floods",
            "--s1",
            work / "s1.tif",
            "--model",
            work / "model.onnx",
            "--out",
            work / "b" / "n.tif",
        ]
        assert main([str(a) for a in next_run]) == 0
        after = snapshot(work)
        assert after["o.tif"] == before["o.tif"] and after["b/p.tif"] == before["b/p.tif"]
        assert not [p for p in work.rglob(".*")]
        return
    if case == "stale-journal-unreadable":
        journal = work / f"{output_set.JOURNAL_PREFIX}{_dead_pid()}.1{output_set.JOURNAL_SUFFIX}"
        journal.write_text("{ not json")
        assert main(_args(work)) == 0
        assert journal.read_text() == "{ not json" and (work / "o.tif").read_bytes()[:2] in (b"II", b"MM")
        return
    if case == "sigterm":
        before = snapshot(work)
        cmd = [sys.executable, "-m", "contrasat", "--progress", "json", *_args(work, None, "--probabilities",
               work / "p.tif", "--tile", 16, "--overlap", 0, "--batch", 1)]  # fmt: skip
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if '"progress"' in line:
                proc.send_signal(signal.SIGTERM)
                break
        _, rest = proc.communicate(timeout=120)
        lines.append(rest)
        events = [json.loads(x) for x in "".join(lines).splitlines() if x.startswith("{")]
        assert proc.returncode == 130, lines
        assert events[-1] == {"event": "cancelled", "exit": 130}
        assert snapshot(work) == before and _partials(work) == []
        return
    raise AssertionError(f"no builder for case {case}")
