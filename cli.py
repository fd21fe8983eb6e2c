"""The `contrasat` command: the jobs of the table (models/jobs.py), list models, run the demo, train (torch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .models.errors import Cancelled, ContrasatError
from .models.jobs import JOBS
from .progress import CANCELLED_EXIT, MODES, Reporter


def cmd_job(args: argparse.Namespace) -> int:
    """Run the job of the table (models/jobs.py) that this command was built from."""
    from .models.execution import Execution

    job = args.job
    kwargs = {p.name: getattr(args, p.name) for p in job.params if not p.execution}
    if job.execution_params:
        kwargs["config"] = Execution.from_values(
            {p.name: getattr(args, p.name) for p in job.execution_params}
        )
    result = job.runner()(**kwargs, progress=args.reporter.progress)
    return _finish(args, result)


def _finish(args: argparse.Namespace, result) -> int:
    """Report a finished job: notes as messages, the summary as text or one JSON document on stdout."""
    summary = result.to_dict()
    for note in summary["notes"]:
        args.reporter.message(note["level"], note["text"])
    args.reporter.done(summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(result.text_lines()))
    return result.exit_code


def _flatten(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Card metrics as (dotted key, value) lines; a dict of numbers stays on one line (model vs baselines)."""
    lines = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and all(v is None or isinstance(v, int | float) for v in value.values()):
            # None = undefined (e.g. IoU on a chip without water)
            lines.append(
                (name, ", ".join(f"{k}={'n/a' if v is None else f'{v:.4g}'}" for k, v in value.items()))
            )
        elif isinstance(value, dict):
            lines.extend(_flatten(value, f"{name}."))
        elif not isinstance(value, list):
            lines.append((name, f"{value:.4g}" if isinstance(value, float) else str(value)))
    return lines


def cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import DEFAULTS, bundled_models

    found = bundled_models()
    if args.json:
        listing = [
            {"name": card.name, "default": DEFAULTS.get(card.task) == card.name, "task": card.task,
             "file": str(path), "tile_size": card.tile_size,
             "inputs": [{"name": s.name, "sensor": s.sensor, "bands": s.bands, "units": s.units} for s in card.inputs],
             "classes": [{"value": c.value, "name": c.name, "color": c.color} for c in card.classes],
             "metrics": card.metrics}
            for path, card in found
        ]  # fmt: skip
        print(json.dumps(listing, indent=2))
        return 0 if found else 1
    if not found:
        print("no bundled models found")
        return 1
    for path, card in found:
        default = " (default)" if DEFAULTS.get(card.task) == card.name else ""
        print(f"{card.name}{default}  task={card.task}  file={path.name}  tile={card.tile_size}")
        for spec in card.inputs:
            print(f"  input {spec.name}: {spec.sensor} [{', '.join(spec.bands)}] in {spec.units}")
        print(f"  classes: {', '.join(f'{c.value}={c.name}' for c in card.classes)}")
        for key, value in _flatten(card.metrics):
            print(f"  {key}: {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    for line in run_demo(Path(args.out)):
        print(line)
    return 0


def cmd_train(argv: list[str]) -> int:
    """`contrasat train ...`: one parser over every training kit (training/cli.py)."""
    from .training.cli import main as train_main

    return train_main(argv)


def _count(minimum: int, what: str):
    """argparse type: an integer >= minimum, refused with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be {minimum} or more, not {value}")
        return value

    return parse


def _multiple(of: int, minimum: int, what: str):
    """argparse type: an integer >= minimum that is a multiple of `of`."""

    def parse(text: str) -> int:
        value = _count(minimum, what)(text)
        if value % of:
            raise argparse.ArgumentTypeError(f"{what} must be a multiple of {of}, not {value}")
        return value

    return parse


def _int_type(param):
    """argparse type of an int parameter: its minimum and multiple, and its words (auto, model)."""
    minimum = param.minimum if param.minimum is not None else -(2**31)
    check = (
        _multiple(param.multiple_of, minimum, param.option)
        if param.multiple_of
        else _count(minimum, param.option)
    )
    if not param.words:
        return check
    return lambda text: text if text in param.words else check(text)


def _argument(param) -> tuple[list[str], dict]:
    """The argparse name(s) and keywords of one table parameter, by its kind."""
    kwargs: dict = {"help": param.help, "default": param.default}
    if param.many:
        kwargs["nargs"] = "+"
    if param.positional:
        return [param.name], kwargs
    kwargs["dest"] = param.name
    if param.required:
        kwargs["required"] = True
    if param.kind == "flag":
        kwargs.update(action="store_true", default=False)
    elif param.kind == "int":
        kwargs["type"] = _int_type(param)
    elif param.kind == "float":
        kwargs["type"] = float
    elif param.kind == "choice":
        kwargs["choices"] = list(param.choices)
    return [param.option], kwargs


def _add_job_arguments(p: argparse.ArgumentParser, job) -> None:
    """Arguments of one job from the job table: one option per parameter, checked by type where possible."""
    for param in job.params:
        names, kwargs = _argument(param)
        p.add_argument(*names, **kwargs)
    p.add_argument("--json", action="store_true", help="print the job summary as one JSON document")
    p.set_defaults(func=cmd_job, job=job)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`contrasat: error: ...`, exit 2) instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _add_global_options(p: argparse.ArgumentParser, default) -> None:
    """Options accepted before or after the command (the subcommand's copy must not reset the main one)."""
    p.add_argument("--progress", choices=MODES, default=default,
                   help="auto: a bar on a terminal; json: one JSON event per line on stderr; none")  # fmt: skip
    p.add_argument("-v", "--verbose", action="count", default=default, help="more log output")
    p.add_argument("-q", "--quiet", action="count", default=default, help="less log output")


def package_version() -> str:
    """The installed package's version; from pyproject.toml or metadata.txt when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contrasat")
    except PackageNotFoundError:
        pass
    root = Path(__file__).resolve().parent
    import re

    for name, pattern in (
        ("pyproject.toml", r'(?m)^version\s*=\s*"([^"]+)"'),
        ("metadata.txt", r"(?m)^version=(\S+)"),
    ):
        path = root / name
        if path.is_file():
            match = re.search(pattern, path.read_text(encoding="utf-8"))
            if match:
                return match.group(1)
    return "unknown"


class _Version(argparse.Action):
    """--version, looked up only when asked for: importlib.metadata costs every run ~15 ms otherwise."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"contrasat {package_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="contrasat", description=__doc__)
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    _add_global_options(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for job in JOBS:
        _add_job_arguments(sub.add_parser(job.name, help=job.help), job)
    p = sub.add_parser("models", help="bundled models, their inputs and metrics")
    p.add_argument("--json", action="store_true", help="print the model list as one JSON document")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("demo", help="run the jobs on the bundled real sample and write PNG previews")
    p.add_argument("--out", default="contrasat-demo", help="output folder (default: ./contrasat-demo)")
    p.set_defaults(func=cmd_demo)
    sub.add_parser(
        "train", help="pre-training, fine-tuning, evaluation, export (needs torch)", add_help=False
    )
    for command in sub.choices.values():
        if command.prog.endswith(" train"):
            continue
        _add_global_options(command, argparse.SUPPRESS)
    return parser


def _sniff_progress(argv: list[str]) -> str:
    """The --progress mode before parsing, so even argument errors follow the JSON protocol."""
    for i, arg in enumerate(argv):
        if arg == "--progress" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in MODES else "auto"
        if arg.startswith("--progress="):
            value = arg.split("=", 1)[1]
            return value if value in MODES else "auto"
    return "auto"


def _setup_logging(verbose: int, quiet: int) -> None:
    import logging

    level = max(
        logging.DEBUG, min(logging.WARNING - 10 * (verbose or 0) + 10 * (quiet or 0), logging.CRITICAL)
    )
    logging.basicConfig(level=level, format="contrasat: %(levelname)s: %(message)s")
    logging.getLogger("contrasat").setLevel(level)
    # GDAL/OGR report through rasterio's and fiona's loggers; the runtime turns what matters into one
    # error line, so their own lines (e.g. every failed write on a full disk) show only with -v (all with -vv).
    logging.captureWarnings(True)  # e.g. rasterio's NotGeoreferencedWarning before our own one-line refusal
    library = {0: logging.CRITICAL + 1, 1: logging.WARNING}.get(
        verbose or 0, logging.DEBUG
    )  # -vv: everything
    for name in ("rasterio", "fiona", "py.warnings"):
        logging.getLogger(name).setLevel(library)
    # batch: Dask sets its loggers' levels from its config when `distributed` is first imported (later than
    # this), in this process and in every worker process: the environment carries the command's level there.
    import os

    os.environ["DASK_LOGGING__DISTRIBUTED"] = logging.getLevelName(level).lower()


def _hide_native_stderr() -> object | None:
    """Send what C libraries write to fd 2 (libtiff, sqlite: one line per failed write on a full disk) to
    /dev/null, keeping Python's sys.stderr (messages, JSON events, tracebacks) on the real stderr.

    Returns an undo callable, or None when stderr is not the process's fd 2 (e.g. captured by a test).
    """
    import os

    try:
        if sys.stderr.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    original, sys.stderr = sys.stderr, open(saved, "w", buffering=1, closefd=False)  # noqa: SIM115

    def undo() -> None:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = original

    return undo


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # the plugin cancels a job by terminating it: clean up exactly as for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `contrasat` console script; returns the process exit code."""
    import signal
    import threading

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    verbose = any(a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    undo = None if verbose else _hide_native_stderr()
    reporter = Reporter(_sniff_progress(argv), desc=next((a for a in argv if not a.startswith("-")), ""))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            args = build_parser().parse_args(argv)
        except _UsageError as exc:
            reporter.error(str(exc))
            return 2
        args.reporter = reporter
        _setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", 0))
        return args.func(args)
    except (Cancelled, KeyboardInterrupt):
        reporter.cancelled()
        return CANCELLED_EXIT
    except ContrasatError as exc:
        reporter.error(str(exc))
        return 2
    except OSError as exc:  # file system and GDAL I/O failures (rasterio's are OSErrors): one line, exit 2
        from .models.output_set import one_line

        reporter.error(one_line(exc))
        return 2
    finally:
        reporter.close_bar()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if undo is not None:
            undo()


def exit_process(code: int) -> None:
    """End the process with `code` once the work is done, skipping the interpreter's module-by-module
    teardown of numpy, GDAL and ONNX Runtime (0.2-0.4 s a run, a tenth of a 2048² map: bench/throughput.py).
    Exit handlers still run and stdout/stderr are flushed; every output is closed and committed by now.
    With another non-daemon thread still running, the ordinary exit waits for it as before."""
    import atexit
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # logging's flush, temporary folders' cleanup, ...
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the ordinary exit would not print either
        pass
    os._exit(code)


if __name__ == "__main__":
    exit_process(main())
