"""The engine process protocol and command lines (plugin/engine.py), and ONNX cards read without onnx."""

from __future__ import annotations

import io
import signal
import sys
import time
from pathlib import Path

import pytest
from contrasat.models.card import read_card as onnx_read_card
from contrasat.models.errors import ModelError
from contrasat.models.registry import DEFAULTS, bundled_models
from contrasat.plugin import engine
from contrasat.plugin.cards import DEFAULTS as PLUGIN_DEFAULTS
from contrasat.plugin.cards import bundled_cards, read_card, resolve_model
from contrasat.progress import CANCELLED, DONE, ERROR, EVENTS, MESSAGE, PROGRESS, Reporter, event_line

FAKE = Path(__file__).resolve().parent / "fake_engine.py"


def fake(mode: str) -> list[str]:
    return [sys.executable, str(FAKE), mode]


def test_parse_event_accepts_only_protocol_lines():
    assert engine.parse_event('{"event": "progress", "fraction": 0.5}') == {
        "event": "progress",
        "fraction": 0.5,
    }
    assert engine.parse_event("Warning: something") is None
    assert engine.parse_event("{broken") is None
    assert engine.parse_event('{"fraction": 1}') is None
    assert engine.parse_event('["event"]') is None


def test_done_reports_progress_messages_and_summary():
    events = []
    ended = engine.run_engine(fake("done"), on_event=events.append)
    assert ended.status == "done" and ended.returncode == 0
    assert ended.result["provider"] == "CPUExecutionProvider"
    assert [e["fraction"] for e in events if e["event"] == "progress"] == [0.25, 0.5, 0.75, 1.0]
    assert ended.messages == [
        {"event": "message", "level": "info", "text": "linear backscatter converted to dB"}
    ]
    assert ended.tail == ["a plain warning line on stderr"]  # protocol lines are not kept as log


def test_error_event_gives_the_engines_message():
    ended = engine.run_engine(fake("error"))
    assert (ended.status, ended.returncode, ended.message) == ("error", 2, "S1 raster has no valid pixels")


def test_crash_is_reported_with_signal_and_last_lines():
    ended = engine.run_engine(fake("crash"))
    assert ended.status == "crashed" and ended.returncode == -signal.SIGSEGV
    assert "SIGSEGV" in ended.message and "onnxruntime: about to fail" in ended.message


def test_cancel_sends_sigterm_and_reads_the_cancelled_event():
    progress = []

    def on_event(event):
        if event["event"] == "progress":
            progress.append(event["fraction"])

    start = time.monotonic()
    ended = engine.run_engine(fake("cancel"), on_event=on_event, is_cancelled=lambda: len(progress) >= 2)
    assert ended.status == "cancelled" and ended.returncode == 130
    assert time.monotonic() - start < 10  # the fake sleeps 30 s unless SIGTERM stops it


def test_process_ignoring_sigterm_is_killed_after_grace():
    events = []  # cancel once the fake has spoken: by then it ignores SIGTERM (no start-up race on a busy machine)
    ended = engine.run_engine(
        fake("stubborn"), on_event=events.append, is_cancelled=lambda: bool(events), terminate_grace=0.5
    )
    assert ended.status == "cancelled" and ended.returncode == -signal.SIGKILL


def test_garbage_lines_are_not_events():
    events = []
    ended = engine.run_engine(fake("noisy"), on_event=events.append)
    assert ended.status == "done"
    assert all("event" in e for e in events)
    assert "{not json" in ended.tail


def test_missing_interpreter_is_an_error_not_an_exception(tmp_path):
    ended = engine.run_engine([str(tmp_path / "nothing" / "python"), "-m", "contrasat"])
    assert ended.status == "crashed" and "cannot start the engine" in ended.message


def test_environment_drops_qgis_python_and_gdal_overrides(tmp_path):
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/qgis/python", "PYTHONHOME": "/x", "GDAL_DATA": "/usr/share/gdal",
            "PROJ_LIB": "/usr/share/proj", "VIRTUAL_ENV": "/venv", "HOME": "/root"}  # fmt: skip
    env = engine.engine_environ(tmp_path, base)
    assert env["PYTHONPATH"] == str(tmp_path) and env["PATH"] == "/usr/bin" and env["HOME"] == "/root"
    assert not {"PYTHONHOME", "GDAL_DATA", "PROJ_LIB", "VIRTUAL_ENV"} & set(env)
    assert env["PYTHONNOUSERSITE"] == "1"


def test_package_root_links_a_renamed_plugin_folder(tmp_path, monkeypatch):
    plugin = tmp_path / "contrasat-main"
    plugin.mkdir()
    monkeypatch.setattr(engine, "PLUGIN_DIR", plugin)
    root = engine.package_root(tmp_path / "home")
    assert (root / "contrasat").resolve() == plugin.resolve()
    assert engine.package_root(tmp_path / "home") == root  # idempotent
    monkeypatch.setattr(engine, "PLUGIN_DIR", tmp_path / "contrasat")
    assert engine.package_root(tmp_path / "home") == tmp_path


def test_base_python_is_a_python_interpreter():
    found = engine.base_python()
    assert found is not None and Path(found).name.startswith("python")


def test_job_commands_match_the_cli(tmp_path):
    py = "/env/bin/python"
    cmd = engine.job_command(
        py, "map_floods",
        {"s1": Path("/d/s1.tif"), "out": Path("/o/f.tif"), "s2": Path("/d/s2.tif"), "pre_event": Path("/d/pre.tif"),
         "aoi": Path("/t/aoi.geojson"), "model": "flood_s1_unet", "statistics": Path("/o/f_areas.csv"),
         "probabilities": None},
        {"tile": 256, "overlap": 0, "batch": 4, "provider": "cpu", "threads": None},
    )  # fmt: skip
    assert cmd == [
        py, "-m", "contrasat", "map-floods", "--s1", "/d/s1.tif", "--s2", "/d/s2.tif", "--pre-event", "/d/pre.tif",
        "--out", "/o/f.tif", "--statistics", "/o/f_areas.csv", "--aoi", "/t/aoi.geojson", "--model",
        "flood_s1_unet", "--overlap", "0", "--batch", "4", "--tile", "256", "--provider", "cpu",
        "--progress", "json",
    ]  # fmt: skip
    cmd = engine.job_command(
        py, "classify_series",
        {"stack": [Path("/a.tif"), Path("/b.tif")], "out": Path("/o/s.tif"), "dates": ["2020-01-01", "2020-02-01"]},
        {"batch": 4, "overlap": 8, "provider": "auto"},
    )  # fmt: skip
    assert cmd[3:8] == ["classify-series", "--stack", "/a.tif", "/b.tif", "--dates"]
    assert "--overlap" not in cmd and "--batch" not in cmd  # settings classify-series does not take
    assert cmd[-5:] == ["/o/s.tif", "--provider", "auto", "--progress", "json"]
    # a value given for the job wins over the saved setting
    cmd = engine.job_command(
        py, "land-cover", {"s2": "/d/s2.tif", "out": "/o/l.tif", "tile": 128}, {"tile": 256}
    )
    assert cmd[cmd.index("--tile") + 1] == "128" and cmd.count("--tile") == 1
    with pytest.raises(ValueError, match="unknown job"):
        engine.job_command(py, "train", {"out": "/b"})
    with pytest.raises(ValueError, match="no parameter statistics"):  # never dropped without a word
        engine.job_command(
            py, "classify_series", {"stack": ["/a.tif"], "out": "/o.tif", "statistics": "/x.csv"}
        )


def test_cards_read_without_onnx_equal_onnx_reading():
    assert PLUGIN_DEFAULTS == DEFAULTS
    ours = bundled_cards()
    theirs = bundled_models()
    assert [p.name for p, _ in ours] == [p.name for p, _ in theirs] and len(ours) >= 5
    for (path, card), (_, expected) in zip(ours, theirs, strict=True):
        assert card == expected == onnx_read_card(path)


def test_card_reader_refuses_damaged_and_cardless_files(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x0a\xff\xff\xff")  # a length running past the end of the file
    with pytest.raises(ModelError, match="not a readable ONNX"):
        read_card(broken)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"\x08\x07")  # ir_version = 7 and nothing else
    with pytest.raises(ModelError, match="no Contrasat model card"):
        read_card(empty)


def test_resolve_model_names_and_paths(tmp_path):
    assert resolve_model(None, "flood").stem == DEFAULTS["flood"]
    assert resolve_model("landcover_s2", "land_cover").name == "landcover_s2.onnx"
    assert resolve_model("nope", "flood") is None
    assert resolve_model(tmp_path / "missing.onnx", "flood") is None


def test_plugin_code_imports_no_second_gdal_geos_or_onnx():
    """QGIS's process must never load these (they bundle their own GDAL/GEOS/PROJ or pull protobuf)."""
    import ast

    banned = {
        "rasterio",
        "shapely",
        "fiona",
        "onnx",
        "onnxruntime",
        "affine",
        "pyproj",
        "pydantic",
        "sklearn",
    }
    # registry.py (the default model of each task, read by the plugin's model picker) is pure Python over
    # card.py and errors.py; the check below keeps it so
    runtime_modules = {"pipeline", "series", "aoi", "rasters", "outputs", "session", "inference"}
    registry = ast.parse(
        (Path(engine.__file__).parents[1] / "models" / "registry.py").read_text(encoding="utf-8")
    )
    assert {n.module for n in ast.walk(registry) if isinstance(n, ast.ImportFrom)} <= {"__future__", "pathlib",
                                                                                        "card", "errors"}  # fmt: skip
    offenders = {}
    for path in sorted((Path(engine.__file__).parent).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                names = [parts[0]] if node.level == 0 else [p for p in parts if p in runtime_modules]
            bad = set(names) & (banned | runtime_modules)
            if bad:
                offenders.setdefault(path.name, set()).update(bad)
    assert offenders == {}


def test_cuda_device_setting_reaches_the_engine(saved_settings):
    """The settings' CUDA device becomes --device-id; device 0 (the default) adds nothing."""
    from contrasat.plugin.settings import RunSettings, load_settings, save_settings

    save_settings(RunSettings(provider="cuda", device_id=1))
    run = load_settings().to_cli()
    cmd = engine.job_command(
        "/env/bin/python", "map_floods", {"s1": Path("/d/s1.tif"), "out": Path("/o/f.tif")}, run
    )
    assert cmd[cmd.index("--device-id") + 1] == "1" and cmd[cmd.index("--provider") + 1] == "cuda"
    cmd = engine.job_command("/env/bin/python", "map_floods", {"s1": Path("/d/s1.tif"), "out": Path("/o/f.tif")},
                             RunSettings().to_cli())  # fmt: skip
    assert "--device-id" not in cmd


# One call of the CLI's writer per event of the protocol, and the fields the plugin's reader must get back.
WRITTEN = {
    PROGRESS: ("reporter.progress(0.42)", {"fraction": 0.42}),
    MESSAGE: ("reporter.message('warning', 'linear backscatter converted to dB')",
              {"level": "warning", "text": "linear backscatter converted to dB"}),
    DONE: ("reporter.done({'output': '/x/flood.tif', 'class_area_km2': {'water': 1.5}})",
           {"result": {"output": "/x/flood.tif", "class_area_km2": {"water": 1.5}}}),
    ERROR: ("reporter.error('S1 raster has no valid pixels', 2)", {"message": "S1 raster has no valid pixels", "exit": 2}),
    CANCELLED: ("reporter.cancelled()", {"exit": 130}),
}  # fmt: skip


def test_every_progress_event_round_trips_from_the_cli_writer_to_the_plugin_reader():
    """progress.py's Reporter writes each event as one line; plugin/engine.py reads back the same event."""
    assert set(WRITTEN) == set(EVENTS)
    for name, (call, fields) in WRITTEN.items():
        stream = io.StringIO()
        eval(call, {"reporter": Reporter("json", stream=stream)})  # noqa: S307 - the literal calls above
        (line,) = stream.getvalue().splitlines()
        event = engine.parse_event(line)
        assert event == {"event": name, **fields}
        assert tuple(event) == ("event", *EVENTS[name])  # every field, in the protocol's order
    with pytest.raises(ValueError, match="not a progress event"):
        event_line(DONE, output="/x")  # a field the protocol does not have is never written
    with pytest.raises(ValueError, match="not a progress event"):
        event_line("finished", result={})


@pytest.mark.parametrize("final", [DONE, ERROR, CANCELLED])
def test_an_engine_writing_through_the_reporter_ends_as_its_final_event(final):
    """A real process writing with the CLI's Reporter: the reader passes on progress and notes and ends
    with the status of the final event."""
    call, fields = WRITTEN[final]
    exit_code = fields.get("exit", 0)
    code = (
        "import sys\nfrom contrasat.progress import Reporter\nreporter = Reporter('json')\n"
        f"{WRITTEN[MESSAGE][0]}\n{WRITTEN[PROGRESS][0]}\n{call}\nsys.exit({exit_code})\n"
    )
    events = []
    ended = engine.run_engine([sys.executable, "-c", code], on_event=events.append)
    assert [e["event"] for e in events] == [MESSAGE, PROGRESS, final]
    assert (ended.status, ended.returncode) == (final, exit_code)
    assert ended.messages == [{"event": MESSAGE, **WRITTEN[MESSAGE][1]}]
    assert ended.result == fields.get("result", {})
    assert ended.message == fields.get("message", "")
