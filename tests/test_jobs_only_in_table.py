"""Every job is declared once, in the job table (models/jobs.py): the CLI and the plugin only read it.

The scan is static (no QGIS needed): cli.py may name no sub-command or option of a table job, and no
plugin module may subclass QgsProcessingAlgorithm under a table job's name or spell a table job's
command-line option (its command lines come from the table's Param.arguments / plugin.engine.cli_arguments).
"""

from __future__ import annotations

import ast
from pathlib import Path

from contrasat.models.jobs import JOBS

REPO = Path(__file__).resolve().parents[1]
NON_JOB_COMMANDS = {"models", "demo", "train"}  # commands that are not jobs (no inputs -> outputs run)
NON_JOB_OPTIONS = {"--version", "--progress", "-v", "--verbose", "-q", "--quiet", "--json", "--out", "-h"}
JOB_NAMES = {j.name for j in JOBS} | {j.algorithm for j in JOBS}
JOB_OPTIONS = {p.option for j in JOBS for p in j.params}


def _calls(tree: ast.AST, attribute: str):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == attribute
        ):
            yield node


def _literals(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def test_cli_declares_no_job_of_its_own():
    tree = ast.parse((REPO / "cli.py").read_text(encoding="utf-8"))
    commands = {name for call in _calls(tree, "add_parser") for name in _literals(call)}
    assert commands <= NON_JOB_COMMANDS, commands - NON_JOB_COMMANDS
    options = {name for call in _calls(tree, "add_argument") for name in _literals(call)}
    assert options <= NON_JOB_OPTIONS, options - NON_JOB_OPTIONS  # a job's option comes from its Param


def _algorithm_names(tree: ast.AST) -> dict[str, str]:
    """Class name -> the literal its name() returns, for every direct QgsProcessingAlgorithm subclass."""
    found = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(isinstance(b, ast.Name) and b.id == "QgsProcessingAlgorithm" for b in node.bases):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "name":
                returned = [r.value for r in ast.walk(item) if isinstance(r, ast.Return)]
                if returned and isinstance(returned[0], ast.Constant):
                    found[node.name] = returned[0].value
    return found


def test_plugin_declares_no_job_of_its_own():
    offenders = {}
    for path in sorted((REPO / "plugin").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        algorithms = {c: n for c, n in _algorithm_names(tree).items() if n in JOB_NAMES}
        options = sorted(
            {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in JOB_OPTIONS}
        )
        if algorithms or options:
            offenders[path.name] = {"algorithms": algorithms, "options": options}
    assert offenders == {}


def test_the_scan_finds_a_hand_written_job(tmp_path):
    """The checks above are not vacuous: a hand-written command and algorithm are caught."""
    cli = ast.parse('sub.add_parser("finetune")\np.add_argument("--steps", type=int)')
    assert {n for c in _calls(cli, "add_parser") for n in _literals(c)} == {"finetune"}
    assert {n for c in _calls(cli, "add_argument") for n in _literals(c)} & JOB_OPTIONS == {"--steps"}
    plugin = ast.parse("class A(QgsProcessingAlgorithm):\n    def name(self):\n        return 'batch'\n")
    assert _algorithm_names(plugin) == {"A": "batch"}
