"""The engine check that runs a job, the GPU choice, and the installer as one background task at a time."""

from __future__ import annotations

import gc
import json
import os
import stat
import sys
import warnings
from pathlib import Path

import pytest
from contrasat.models.card import ClassInfo
from contrasat.plugin import deps_dialog, engine_env, engine_install
from contrasat.plugin import dock as dock_module
from contrasat.plugin.deps_dialog import HELP_PAGE, DependencyDialog
from contrasat.plugin.engine import package_root
from contrasat.plugin.engine_env import (
    ENGINE_PYTHON_KEY,
    EngineStatus,
    check_engine,
    cuda_available,
    status_from_report,
)
from contrasat.plugin.engine_install import (
    GPU_LOCK,
    RUNTIME_LOCK,
    TRAIN_GPU_LOCK,
    TRAIN_LOCK,
    InstallPlan,
    nvidia_gpus,
    pip_install_command,
    plan_install,
    run_logged,
    running_install,
    start_install,
)
from contrasat.plugin.results import JobSummary, area_rows
from contrasat.plugin.settings_dialog import SettingsDialog
from qgis.core import QgsSettings

PACKAGE_ROOT = Path(
    package_root(Path("/nonexistent"))
)  # the folder holding `contrasat` (never a symlink dir)


def shadow(tmp_path: Path, *names: str) -> Path:
    """A folder that, first on PYTHONPATH, makes `import NAME` fail as if the package were not installed."""
    folder = tmp_path / "shadow"
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\")\n"
        )
    return folder


@pytest.mark.parametrize("missing", ["onnxruntime", "shapely"])
def test_check_fails_naming_a_package_removed_from_the_engine(tmp_path, missing):
    """The engine (this Python) with one package made unimportable: the check names it and says the fix."""
    QgsSettings().setValue(ENGINE_PYTHON_KEY, sys.executable)
    env = engine_env.engine_env()
    env["PYTHONPATH"] = os.pathsep.join([str(shadow(tmp_path, missing)), env["PYTHONPATH"]])
    status = check_engine(env=env)
    assert not status.ok
    failed = {p["name"]: p for p in status.failed()}
    assert missing in failed and f"No module named '{missing}'" in failed[missing]["detail"]
    assert "install the engine again" in failed[missing]["fix"]
    assert "test job" in failed  # no job is attempted on a broken engine
    assert f"- {missing}: cannot import {missing}" in status.message and "engine ready" not in status.message
    others = [p for p in status.pieces if p["name"] in ("numpy", "rasterio") and p["ok"]]
    assert len(others) == 2  # the pieces that work are not blamed


def test_dock_banner_names_the_failing_piece(tmp_path, qgis_iface):
    status = status_from_report(
        Path("/env/bin/python"), 1,
        json.dumps({"ok": False, "pieces": [
            {"name": "numpy", "ok": True, "detail": "numpy 1.26.4", "fix": ""},
            {"name": "onnxruntime", "ok": False, "detail": "cannot import onnxruntime", "fix": "install again"},
        ]}), [],
    )  # fmt: skip
    dock = dock_module.ContrasatDock(qgis_iface, lambda request: None)
    try:
        dock.set_engine_status(status)
        assert (
            not dock.engine_banner.isHidden()
            and "onnxruntime: cannot import onnxruntime" in dock.engine_label.text()
        )
        assert not dock.run_button.isEnabled() and dock.install_button.isEnabled()
    finally:
        dock.cleanup()


def test_check_module_reports_every_piece_and_the_providers():
    status = check_engine()
    assert status.ok, status.message
    names = [p["name"] for p in status.pieces]
    for step in (
        "read a raster (rasterio/GDAL)",
        "run a model (ONNX Runtime)",
        "clip to an area of interest (shapely)",
    ):
        assert step in names
    assert "CPUExecutionProvider" in status.providers and not status.cuda and not cuda_available()
    assert "on CPU" in status.message


def fake_nvidia_smi(folder: Path, output: str, code: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")  # builtins only: PATH holds just this
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def test_gpu_found_only_when_nvidia_smi_reports_a_device(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert nvidia_gpus() == []  # no tool
    fake_nvidia_smi(
        tmp_path / "broken", "NVIDIA-SMI has failed because it could not communicate with the driver", 9
    )
    monkeypatch.setenv("PATH", str(tmp_path / "broken"))
    assert nvidia_gpus() == []  # a tool without a driver
    fake_nvidia_smi(tmp_path / "none", "No devices were found", 6)
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert nvidia_gpus() == []
    fake_nvidia_smi(tmp_path / "gpu", "GPU 0: NVIDIA RTX A4000 (UUID: GPU-1234)")
    monkeypatch.setenv("PATH", str(tmp_path / "gpu"))
    assert nvidia_gpus() == ["GPU 0: NVIDIA RTX A4000 (UUID: GPU-1234)"]


def test_installer_offers_the_gpu_engine_only_with_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(deps_dialog, "lock_applies", lambda: True)
    fake_nvidia_smi(tmp_path / "gpu", "GPU 0: NVIDIA RTX A4000 (UUID: GPU-1234)")
    monkeypatch.setenv("PATH", str(tmp_path / "gpu") + os.pathsep + os.environ["PATH"])
    with_gpu = DependencyDialog()
    assert not with_gpu.gpu.isHidden() and with_gpu.gpu.isChecked() and "RTX A4000" in with_gpu.gpu.text()
    (plan,) = with_gpu.plans()
    assert plan.gpu and plan.requirements == GPU_LOCK and plan.remove == ("onnxruntime",)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    without = DependencyDialog()
    assert without.gpu.isHidden()
    (plan,) = without.plans()
    assert not plan.gpu and plan.requirements == RUNTIME_LOCK and plan.remove == ("onnxruntime-gpu",)


def test_install_plans_use_the_lock_with_hashes():
    plan = plan_install(locked=True)
    command = pip_install_command("/env/bin/python", plan, "/wheels")
    assert plan.hashed and "--require-hashes" in command and str(RUNTIME_LOCK) in command
    assert command[-3:] == ["--no-index", "--find-links", "/wheels"]
    elsewhere = plan_install(gpu=True, locked=False)  # no lock for this platform: the pins, no GPU engine
    assert not elsewhere.hashed and not elsewhere.gpu and elsewhere.requirements.name == "runtime.txt"
    assert "--require-hashes" not in pip_install_command("/env/bin/python", elsewhere)


@pytest.mark.parametrize(("providers", "cuda", "offered"), [
    (["CUDAExecutionProvider", "CPUExecutionProvider"], True, True),
    (["CUDAExecutionProvider", "CPUExecutionProvider"], False, False),  # GPU build, no usable GPU
    (["CPUExecutionProvider"], False, False),
])  # fmt: skip
def test_settings_offer_cuda_only_when_the_check_ran_on_it(providers, cuda, offered):
    report = {"ok": True, "providers": providers, "cuda": cuda, "models": [{"name": "m"}], "pieces": []}
    status = status_from_report(Path(sys.executable), 0, json.dumps(report), [])
    assert status.providers == providers  # the check's object, not `models --json`'s list, carries them
    engine_env._STATUS["last"] = status
    try:
        dialog = SettingsDialog()
        items = [dialog.provider.itemData(i) for i in range(dialog.provider.count())]
        assert ("cuda" in items) is offered
        assert ("CUDA (GPU)" in status.message) is cuda
    finally:
        engine_env._STATUS.pop("last", None)


def test_one_install_at_a_time_and_the_dock_follows_it(qgis_iface, monkeypatch):
    started = []
    dock = dock_module.ContrasatDock(qgis_iface, lambda request: None)
    try:
        task = start_install(None, [InstallPlan(Path("x.lock"), True)], add_task=started.append)
        assert task is not None and running_install() is task and started == [task]
        assert start_install(None, None, add_task=started.append) is None and started == [
            task
        ]  # no second pip
        assert "Installing the engine" in dock.engine_label.text() and not dock.engine_banner.isHidden()
        assert not dock.run_button.isEnabled() and not dock.install_button.isEnabled()
        assert dock.install_progress.isVisibleTo(dock)
        assert dock.run_panel(dock.tabs.currentWidget()) is None and "being installed" in dock.message.text()
        task.setProgress(40)
        assert dock.install_progress.value() == 40
        task.error = "pip failed (exit code 1)"
        task.taskTerminated.emit()
        assert running_install() is None
        assert (
            "not installed: pip failed" in dock.engine_label.text() and dock.install_button.text() == "Retry"
        )
        assert dock.install_button.isEnabled() and not dock.run_button.isEnabled()
        retried = []
        monkeypatch.setattr(dock_module, "start_install", lambda w, p: retried.append(p) or object())
        dock.install_button.click()
        assert retried == [task.plans]  # Retry runs the same installation again
    finally:
        engine_install._RUNNING.clear()
        dock.cleanup()


def test_run_logged_closes_its_pipe():
    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = run_logged([sys.executable, "-c", "print('one'); print('two')"], on_line=lines.append)
        gc.collect()
    assert code == 0 and lines == ["one", "two"]
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_area_table_rows_only_mapped_classes_and_a_total(qgis_iface):
    summary = JobSummary(
        task="land_cover", output=Path("/x/lc.tif"),
        classes=[ClassInfo(0, "no data", "#000000ff"), ClassInfo(1, "water", "#0000ffff"),
                 ClassInfo(2, "trees", "#00ff00ff"), ClassInfo(3, "crops", "#ffff00ff")],
        class_area_km2={"no data": 0.5, "water": 1.0, "trees": 3.0, "crops": 0.0},
    )  # fmt: skip
    assert [r.name for r in area_rows(summary, only_mapped=True)] == ["water", "trees"]
    assert len(area_rows(summary)) == 4  # the statistics CSV keeps every class
    dock = dock_module.ContrasatDock(qgis_iface, lambda request: None)
    try:
        dock.show_result(summary)
        table = [[dock.summary.item(i, j).text() for j in range(3)] for i in range(dock.summary.rowCount())]
        assert [row[0] for row in table] == ["water", "trees", "Total"]
        assert table[-1][1] == "4.000" and dock.summary.item(2, 0).font().bold()
    finally:
        dock.cleanup()


def test_help_page_and_locks_ship_with_the_plugin():
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "package_plugin.py"
    spec = importlib.util.spec_from_file_location("package_plugin", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = {path.as_posix() for path in module.plugin_files()}
    assert HELP_PAGE.is_file() and "docs/qgis.md" in shipped
    assert {
        "requirements/runtime.lock",
        "requirements/runtime-gpu.lock",
        "requirements/train-engine.lock",
        "requirements/train-engine-gpu.lock",
        "requirements/runtime.txt",
    } <= shipped
    assert not [name for name in shipped if name.startswith("docs/") and name != "docs/qgis.md"]


def test_training_support_is_an_opt_in_of_the_installer(monkeypatch):
    plan = plan_install(training=True)
    assert plan.training and plan.hashed and plan.requirements.name == "train-engine.lock"
    online = pip_install_command("/env/bin/python", plan)
    assert "--require-hashes" in online and engine_install.TORCH_CPU_INDEX in online  # the CPU torch build
    offline = pip_install_command("/env/bin/python", plan, "/wheels")
    assert engine_install.TORCH_CPU_INDEX not in offline and "--no-index" in offline
    dialog = DependencyDialog(gpus=[])
    assert not dialog.training.isHidden() and not dialog.training.isChecked()  # offered, never preselected
    assert [p.training for p in dialog.plans()] == [False]
    dialog.training.setChecked(True)
    assert [p.training for p in dialog.plans()] == [False, True]  # the engine, then training on top
    assert "torch CPU" in dialog.training.text() and "MB" in dialog.training.text()
    assert DependencyDialog(gpus=[], training=True).training.isChecked()  # opened from the Fine-tune tab


def test_training_support_detected_by_running_the_engine(tmp_path):
    QgsSettings().setValue(ENGINE_PYTHON_KEY, sys.executable)  # the test venv has torch
    assert engine_install.training_installed()
    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(tmp_path / "none" / "bin" / "python"))
    assert not engine_install.training_installed()


@pytest.mark.parametrize(("gpu", "training", "locks", "removed"), [
    (False, False, [RUNTIME_LOCK], ["onnxruntime-gpu"]),
    (True, False, [GPU_LOCK], ["onnxruntime"]),
    (False, True, [RUNTIME_LOCK, TRAIN_LOCK], ["onnxruntime-gpu", "onnxruntime-gpu"]),
    (True, True, [GPU_LOCK, TRAIN_GPU_LOCK], ["onnxruntime", "onnxruntime"]),  # never the CPU onnxruntime
])  # fmt: skip
def test_installer_installs_one_onnxruntime_build_for_each_choice(
    tmp_path, monkeypatch, gpu, training, locks, removed
):
    """GPU × training ticked in the dialog (a fake nvidia-smi reports a GPU): every step keeps the chosen
    build and removes the other one, so the engine never holds both onnxruntime builds."""
    monkeypatch.setattr(deps_dialog, "lock_applies", lambda: True)
    monkeypatch.setattr(engine_install, "lock_applies", lambda: True)
    fake_nvidia_smi(tmp_path / "gpu", "GPU 0: NVIDIA RTX A4000 (UUID: GPU-1234)")
    monkeypatch.setenv("PATH", str(tmp_path / "gpu") + os.pathsep + os.environ["PATH"])
    dialog = DependencyDialog()  # no checked engine yet: the engine is installed first
    dialog.gpu.setChecked(gpu)
    dialog.training.setChecked(training)
    plans = dialog.plans()
    assert [p.requirements for p in plans] == locks
    assert [name for p in plans for name in p.remove] == removed
    assert all(p.gpu == gpu for p in plans) and [p.training for p in plans] == [False, True][: len(plans)]


def engine_status(ok: bool, gpu_build: bool) -> EngineStatus:
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu_build else ["CPUExecutionProvider"]
    return EngineStatus(ok, Path(sys.executable), "checked", providers=providers)


@pytest.mark.parametrize("gpu_build", [False, True])
def test_training_added_to_a_working_engine_installs_only_its_training_lock(tmp_path, monkeypatch, gpu_build):
    """Opened from the Fine-tune tab on an engine that passed its check: the GPU box follows the engine's
    build, and only the training lock of that build is installed (the runtime lock is not run again)."""
    monkeypatch.setattr(deps_dialog, "lock_applies", lambda: True)
    monkeypatch.setattr(engine_install, "lock_applies", lambda: True)
    fake_nvidia_smi(tmp_path / "gpu", "GPU 0: NVIDIA RTX A4000 (UUID: GPU-1234)")
    monkeypatch.setenv("PATH", str(tmp_path / "gpu") + os.pathsep + os.environ["PATH"])
    dialog = DependencyDialog(engine_status(True, gpu_build), training=True)
    assert dialog.gpu.isChecked() == gpu_build
    (plan,) = dialog.plans()
    assert plan.training and plan.gpu == gpu_build
    assert plan.requirements == (TRAIN_GPU_LOCK if gpu_build else TRAIN_LOCK)
    assert plan.remove == (("onnxruntime",) if gpu_build else ("onnxruntime-gpu",))
    dialog.gpu.setChecked(not gpu_build)  # switching the build reinstalls the engine first
    assert [p.requirements.name for p in dialog.plans()][0] in ("runtime.lock", "runtime-gpu.lock")
    assert len(dialog.plans()) == 2
    broken = engine_install.install_plans(
        gpu=gpu_build, training=True, status=engine_status(False, gpu_build)
    )
    assert len(broken) == 2 and not broken[0].training  # an engine failing its check is installed again


def test_install_removes_the_other_build_once(tmp_path, monkeypatch):
    """Engine then training in one installation: the other onnxruntime build is uninstalled once, before the
    first pip install (the second step would only print pip's 'Skipping ... not installed')."""
    monkeypatch.setattr(engine_install, "lock_applies", lambda: True)
    python = tmp_path / "engine" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    monkeypatch.setattr(engine_install, "env_dir", lambda: tmp_path / "engine")
    monkeypatch.setattr(engine_install, "env_python", lambda _target: python)
    commands: list[list[str]] = []
    monkeypatch.setattr(
        engine_install, "run_logged", lambda command, *_a, **_k: commands.append(command) or 0
    )
    monkeypatch.setattr(engine_install, "check_engine", lambda _emit: engine_status(True, True))
    task = engine_install.InstallTask(plans=engine_install.install_plans(gpu=True, training=True))
    assert task._install(), task.error
    steps = [(c[3], c[-1] if c[3] == "uninstall" else c[c.index("-r") + 1]) for c in commands]
    assert steps == [
        ("uninstall", "onnxruntime"),
        ("install", str(GPU_LOCK)),
        ("install", str(TRAIN_GPU_LOCK)),
    ]
