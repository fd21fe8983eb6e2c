"""The plugin is built from the job table: every job is a Processing algorithm whose parameters are the
table's, and every engine command line (Processing and dock) comes from the same Param -> option mapping."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from contrasat.models import jobs
from contrasat.models.jobs import MODEL, PROVIDER, THREADS, Job, Param
from contrasat.plugin.engine_env import ENGINE_PYTHON_KEY
from contrasat.plugin.launcher import JobRequest, request_command
from contrasat.plugin.settings import RunSettings, save_settings
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsRectangle,
    QgsSettings,
    QgsVectorLayer,
)

TYPES = {
    "raster": QgsProcessingParameterRasterLayer,
    "rasters": QgsProcessingParameterMultipleLayers,
    "vector": QgsProcessingParameterFeatureSource,
    "model": QgsProcessingParameterString,
    "dates": QgsProcessingParameterString,
    "output_raster": QgsProcessingParameterRasterDestination,
    "output_vector": QgsProcessingParameterVectorDestination,
    "output_table": QgsProcessingParameterFileDestination,
    "int": QgsProcessingParameterNumber,
    "choice": QgsProcessingParameterEnum,
    "scenes": QgsProcessingParameterMultipleLayers,
    "labels": QgsProcessingParameterFeatureSource,
    "field": QgsProcessingParameterField,
    "output_model": QgsProcessingParameterFileDestination,
    "output_folder": QgsProcessingParameterFolderDestination,
    "float": QgsProcessingParameterNumber,
    "flag": QgsProcessingParameterBoolean,
    "text": QgsProcessingParameterString,
    "texts": QgsProcessingParameterString,
}
# what each kind of job reports besides its destinations (the kind of its first output decides)
RESULT_OUTPUTS = {
    "output_raster": {"MODEL_NAME", "CLASS_AREAS_JSON"},
    "output_model": {"HELDOUT_WATER_IOU"},
    "output_folder": set(),
}

FAKE = Job(
    name="fake-job", task="fake_task", function="pipeline:map_floods", title="Fake job",
    help="a job added to the table by a test",
    inputs=(
        Param("image", "raster", "the image", required=True, label="Image"),
        Param("scenes", "rasters", "more scenes"),
        Param("zones", "vector", "zones to map"),
    ),
    outputs=(
        Param("out", "output_raster", "class raster", required=True),
        Param("table", "output_table", "areas"),
    ),
    options=(
        MODEL,
        Param("blocks", "int", "block side", default=32, minimum=8, multiple_of=8),
        Param("mode", "choice", "how", default="fast", choices=("fast", "exact")),
        PROVIDER, THREADS,
    ),
)  # fmt: skip


def _assert_matches_table(algorithm, job: Job) -> None:
    """Every table parameter is one Processing parameter of the right type, flags, default and limits."""
    definitions = {d.name(): d for d in algorithm.parameterDefinitions()}
    assert set(definitions) == {p.processing_name for p in job.params}
    for param in job.params:
        d = definitions[param.processing_name]
        assert isinstance(d, TYPES[param.kind]), (param.name, type(d))
        assert bool(d.flags() & QgsProcessingParameterDefinition.FlagOptional) == (not param.required), (
            param.name
        )
        assert d.description() == param.title and d.help() == param.help
        assert bool(d.flags() & QgsProcessingParameterDefinition.FlagAdvanced) == param.execution
        if param.kind == "int":
            assert d.dataType() == QgsProcessingParameterNumber.Integer
            assert d.minimum() == (param.minimum if param.minimum is not None else -(2**31))
            assert d.defaultValue() == (None if param.execution else param.default)
        if param.kind == "float":
            assert d.dataType() == QgsProcessingParameterNumber.Double and d.defaultValue() == param.default
        if param.kind == "choice":
            assert d.options() == list(param.choices)
            expected = (
                None if param.execution or param.default is None else param.choices.index(param.default)
            )
            assert d.defaultValue() == expected
        if param.kind == "field":  # a field of the job's labels layer
            (labels,) = [p.processing_name for p in job.params if p.kind == "labels"]
            assert d.parentLayerParameterName() == labels and d.defaultValue() == param.default
    outputs = {o.name() for o in algorithm.outputDefinitions()}
    reported = RESULT_OUTPUTS[job.outputs[0].kind]
    assert {p.processing_name for p in job.outputs} | reported <= outputs
    assert ("FLOODED_KM2" in outputs) == (job.task == "flood" and job.outputs[0].kind == "output_raster")


@pytest.mark.parametrize("entry", jobs.JOBS, ids=lambda j: j.name)
def test_every_job_is_an_algorithm_with_the_table_parameters(plugin, entry):
    algorithm = QgsApplication.processingRegistry().algorithmById(f"contrasat:{entry.algorithm}")
    assert algorithm is not None and algorithm.displayName() == entry.display_name
    _assert_matches_table(algorithm, entry)
    for param in entry.params:  # the help names every parameter with its explanation
        assert param.help in algorithm.shortHelpString()


@pytest.fixture
def fake_job(plugin, monkeypatch):
    """The table with one more job, and the provider reloaded as on a plugin update."""
    monkeypatch.setattr(jobs, "JOBS", (*jobs.JOBS, FAKE))
    plugin.provider.refreshAlgorithms()
    yield FAKE
    monkeypatch.undo()
    plugin.provider.refreshAlgorithms()


def _recording_engine(folder: Path) -> Path:
    """An engine 'python' that records its command line (and the zones file it was given) and succeeds."""
    script = folder / "python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, shutil, sys\n"
        "args = sys.argv[1:]\n"
        "here = pathlib.Path(sys.argv[0]).parent\n"
        "(here / 'argv.json').write_text(json.dumps(args))\n"
        "if '--zones' in args:\n"
        "    shutil.copy(args[args.index('--zones') + 1], here / 'zones_seen.geojson')\n"
        "out = args[args.index('--out') + 1]\n"
        "pathlib.Path(out).write_bytes(b'not a raster')\n"
        "done = {'event': 'done', 'result': {'outputs': {'classes': out}, 'model_name': 'fake',\n"
        "        'class_area_km2': {'a': 1.5}}}\n"
        "print(json.dumps(done), file=sys.stderr)\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_job_added_to_the_table_becomes_an_algorithm(fake_job, s1_sample, tmp_path):
    registry = QgsApplication.processingRegistry()
    algorithm = registry.algorithmById("contrasat:fake_job")
    assert algorithm is not None and algorithm.displayName() == "Fake job"
    _assert_matches_table(algorithm, fake_job)
    names = [d.name() for d in algorithm.parameterDefinitions()]
    assert names == [
        "IMAGE",
        "SCENES",
        "ZONES",
        "MODEL",
        "BLOCKS",
        "MODE",
        "PROVIDER",
        "THREADS",
        "OUT",
        "TABLE",
    ]

    # the table's multiple_of, which Processing's Number cannot express, is checked before a run
    context = QgsProcessingContext()
    ok, message = algorithm.checkParameterValues(
        {"IMAGE": str(s1_sample), "OUT": "o.tif", "BLOCKS": 20}, context
    )
    assert not ok and "multiple of 8" in message

    # the parameters become a request named by the table, and its command line follows the table
    zones = QgsVectorLayer("Polygon?crs=EPSG:3857", "zones", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(0, 0, 10, 10)))
    zones.dataProvider().addFeatures([feature])
    out, table = tmp_path / "out.tif", tmp_path / "areas.csv"
    params = {
        "IMAGE": str(s1_sample), "ZONES": zones, "MODEL": "m.onnx", "BLOCKS": 16, "MODE": 1, "OUT": str(out),
        "TABLE": str(table),
    }  # fmt: skip
    request = registry.createAlgorithmById("contrasat:fake_job").request(params, context)
    assert request.job == "fake_job" and request.primary == s1_sample and request.out == out
    assert set(request.options) == {"zones", "table", "model", "blocks", "mode"}
    assert (request.options["blocks"], request.options["mode"]) == (16, "exact")
    request.settings = RunSettings(provider="cpu", threads=0)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = request_command(request, scratch, python="/env/bin/python")
    zones_file = scratch / "zones.geojson"
    assert command == [
        "/env/bin/python", "-m", "contrasat", "fake-job", "--image", str(s1_sample), "--zones", str(zones_file),
        "--out", str(out), "--table", str(table), "--model", "m.onnx", "--blocks", "16", "--mode", "exact",
        "--provider", "cpu", "--progress", "json",
    ]  # fmt: skip
    written = json.loads(zones_file.read_text(encoding="utf-8"))
    assert written["crs"]["properties"]["name"] == "EPSG:3857"
    assert written["features"][0]["geometry"]["type"] == "Polygon"


def test_a_job_added_to_the_table_runs_through_processing(
    fake_job, qgis_processing, s1_sample, tmp_path, saved_settings
):
    """processing.run on the new job: the engine gets the table's command line, its outputs come back."""
    import processing

    save_settings(RunSettings(provider="auto", threads=3))  # threads given below win over the setting
    engine = _recording_engine(tmp_path)
    QgsSettings().setValue(ENGINE_PYTHON_KEY, str(engine))
    out = tmp_path / "out.tif"
    result = processing.run(
        "contrasat:fake_job",
        {"IMAGE": str(s1_sample), "SCENES": [str(s1_sample), str(s1_sample)], "OUT": str(out), "THREADS": 1},
    )
    argv = json.loads((tmp_path / "argv.json").read_text(encoding="utf-8"))
    assert argv == [
        "-m", "contrasat", "fake-job", "--image", str(s1_sample), "--scenes", str(s1_sample), str(s1_sample),
        "--out", str(out), "--blocks", "32", "--mode", "fast", "--provider", "auto", "--threads", "1",
        "--progress", "json",
    ]  # fmt: skip
    # defaults from the table (blocks, mode); execution settings from the saved settings unless given
    assert result["OUT"] == str(out) and result["TABLE"] is None
    assert result["MODEL_NAME"] == "fake" and json.loads(result["CLASS_AREAS_JSON"]) == {"a": 1.5}
    assert "FLOODED_KM2" not in result


def test_dock_requests_are_named_by_the_table(plugin, s1_layer, tmp_path, saved_settings):
    """What the dock sends uses the table's names; a name outside the table is refused, never dropped."""
    dock = plugin.show_dock()
    for key, panel in dock.panels.items():
        entry = jobs.job(key)
        if (
            key != "finetune"
        ):  # the dock's tab is "Fine-tune"; the table's title names the Processing algorithm
            assert panel.title == entry.display_name
        if hasattr(panel, "layer_combos"):
            inputs = {p.name for p in entry.inputs}
            assert set(panel.layer_combos) - {"primary"} <= inputs
    request = JobRequest("map_floods", Path("/d/s1.tif"), tmp_path / "f.tif", {"stack": [Path("/a.tif")]})
    with pytest.raises(ValueError, match="no parameter stack"):
        request.values()


def test_dock_checks_tile_size_with_the_table_rule(plugin, s1_layer, saved_settings):
    from contrasat.plugin.job_panel import check_tiling

    card = type("Card", (), {"tile_size": 256, "overlap": 32})()
    check_tiling(RunSettings(tile_size=0), card, "map_floods")  # the card's own tiling
    with pytest.raises(ValueError, match="multiple of 16"):
        check_tiling(RunSettings(tile_size=100), card, "map_floods")
    with pytest.raises(ValueError, match="16 or more"):
        check_tiling(
            RunSettings(tile_size=0), type("Card", (), {"tile_size": 0, "overlap": 0})(), "land_cover"
        )
    with pytest.raises(ValueError, match="below half"):
        check_tiling(RunSettings(tile_size=64, overlap=32), card, "land_cover")
    # the series job has its own tile rule in the table: the series panel checks against it
    series = plugin.show_dock().panels["classify_series"]
    with pytest.raises(ValueError, match="Tile size 24 px cannot run: --tile must be a multiple of 16"):
        series_request(series, RunSettings(tile_size=24))


def series_request(panel, settings: RunSettings) -> JobRequest:
    """The series panel's request with every layer of the project ticked."""
    from qgis.core import QgsProject

    panel.set_checked(list(QgsProject.instance().mapLayers().values()))
    return panel.collect(Path("/tmp/out"), None, settings)


def test_batch_is_an_algorithm_whose_command_line_follows_the_table(
    plugin, s1_sample, tmp_path, saved_settings
):
    """contrasat:batch: a scene list, an output folder, flags and free words become `contrasat batch`'s
    command line; the saved execution settings apply as for every tiled job."""
    registry = QgsApplication.processingRegistry()
    algorithm = registry.createAlgorithmById("contrasat:batch")
    assert algorithm.group() == "Mapping" and algorithm.displayName() == jobs.job("batch").display_name
    out = tmp_path / "maps"
    params = {
        "SCENES": [str(s1_sample), str(s1_sample.parent)], "OUTPUT": str(out), "TASK": 1, "POLYGONS": True,
        "STATISTICS": False, "RESOURCES": "GPU=1, MEM=2", "RETRIES": 0,
    }  # fmt: skip
    request = algorithm.request(params, QgsProcessingContext())
    request.settings = RunSettings(provider="cpu", threads=2)
    command = request_command(request, tmp_path, python="/env/bin/python")
    assert command == [
        "/env/bin/python", "-m", "contrasat", "batch", str(s1_sample), str(s1_sample.parent), "--out", str(out),
        "--task", "land_cover", "--polygons", "--retries", "0", "--resources", "GPU=1", "MEM=2",
        "--batch", "4", "--provider", "cpu", "--threads", "2", "--progress", "json",
    ]  # fmt: skip


def test_finetune_keeps_the_parameter_names_of_the_hand_written_algorithm(plugin):
    """Models and scripts made with the earlier contrasat:finetune keep working."""
    algorithm = QgsApplication.processingRegistry().algorithmById("contrasat:finetune")
    names = {d.name() for d in algorithm.parameterDefinitions()}
    assert {"INPUT_S1", "LABELS", "FIELD", "BASE", "STEPS", "FROZEN", "OUTPUT"} <= names
    assert "HELDOUT_WATER_IOU" in {o.name() for o in algorithm.outputDefinitions()}
    assert (
        algorithm.group() == "Training"
        and algorithm.displayName() == "Fine-tune a flood model on your labels"
    )
    steps = algorithm.parameterDefinition("STEPS")
    assert steps.defaultValue() == 200 and steps.minimum() == 1
