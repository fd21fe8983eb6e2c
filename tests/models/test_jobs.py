"""The job table is the one description of each job: the runtime takes its parameters, the CLI shows them."""

from __future__ import annotations

import inspect

import pytest
from contrasat.cli import build_parser
from contrasat.models.execution import Execution
from contrasat.models.jobs import JOBS, KINDS, job


@pytest.mark.parametrize("entry", JOBS, ids=lambda j: j.name)
def test_runtime_function_takes_every_parameter(entry):
    from contrasat.models.pipeline import run_job

    params = dict(inspect.signature(entry.runner()).parameters)
    if any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    ):  # map_floods(**kwargs) -> run_job
        params |= inspect.signature(run_job).parameters
    names = {p.name for p in entry.params if not p.execution}
    assert names <= set(params), names - set(params)
    assert {"progress", "is_cancelled"} <= set(params)
    assert ("config" in params) == bool(entry.execution_params)  # the execution settings, as one Execution
    assert [p.name for p in entry.outputs][0] == "out" and all(p.is_output for p in entry.outputs)
    assert all(p.kind in KINDS for p in entry.params)


def test_every_execution_param_is_a_field_of_the_execution_type():
    """The table's execution parameters and Execution's fields are the same names with the same defaults."""
    fields = Execution().as_dict()
    for entry in JOBS:
        for param in entry.execution_params:
            assert param.name in fields and param.default == fields[param.name], param.name
    assert set(fields) == {p.name for j in JOBS for p in j.execution_params}


def test_batch_reuses_the_table_execution_params():
    """Batch declares no execution setting of its own: tile, batch, provider, ... are the tiled jobs' params."""
    tiled = {p.name: p for p in job("map-floods").execution_params}
    batch = {p.name: p for p in job("batch").execution_params}
    assert all(batch[name] is param for name, param in tiled.items())
    assert job("batch").params == tuple(dict.fromkeys(job("batch").params))  # no parameter twice


@pytest.mark.parametrize("entry", JOBS, ids=lambda j: j.name)
def test_cli_command_is_built_from_the_table(entry):
    parser = build_parser()
    command = parser._subparsers._group_actions[0].choices[entry.name]
    options = {a.dest: a for a in command._actions}
    for param in entry.params:
        assert param.name in options and options[param.name].help == param.help
        assert options[param.name].required == param.required
    assert job(entry.name) is entry
