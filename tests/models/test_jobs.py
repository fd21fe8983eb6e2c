"""The job table is the one description of each job: the runtime takes its parameters, the CLI shows them."""

from __future__ import annotations

import inspect

import pytest
from contrasat.cli import RUN_CONFIG_OPTIONS, build_parser
from contrasat.models.jobs import JOBS, job


@pytest.mark.parametrize("entry", JOBS, ids=lambda j: j.name)
def test_runtime_function_takes_every_parameter(entry):
    from contrasat.models.pipeline import run_job

    params = dict(inspect.signature(entry.runner()).parameters)
    if any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    ):  # map_floods(**kwargs) -> run_job
        params |= inspect.signature(run_job).parameters
    names = {p.name for p in entry.params} - set(RUN_CONFIG_OPTIONS)
    assert names <= set(params), names - set(params)
    assert {"config", "progress", "is_cancelled"} <= set(params)
    assert [p.name for p in entry.outputs][0] == "out" and all(p.is_output for p in entry.outputs)


@pytest.mark.parametrize("entry", JOBS, ids=lambda j: j.name)
def test_cli_command_is_built_from_the_table(entry):
    parser = build_parser()
    command = parser._subparsers._group_actions[0].choices[entry.name]
    options = {a.dest: a for a in command._actions}
    for param in entry.params:
        assert param.name in options and options[param.name].help == param.help
        assert options[param.name].required == param.required
    assert job(entry.name) is entry
