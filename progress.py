"""How the CLI reports a job: a tqdm bar, nothing, or machine-readable JSON lines on stderr.

The JSON lines protocol (`contrasat --progress json ...`), one object per line on stderr, is what the QGIS
plugin reads when it runs a job as a subprocess:

    {"event": "progress", "fraction": 0.42}                  at most ~100 per job, non-decreasing
    {"event": "message", "level": "info", "text": "..."}     level: "info" or "warning" (notes, conversions)
    {"event": "done", "result": {...}}                       the job summary (JobResult.to_dict())
    {"event": "error", "message": "...", "exit": 2}          the one-line error, and the exit code
    {"event": "cancelled", "exit": 130}                      Ctrl-C or SIGTERM; temporaries removed

A job ends with exactly one of done, error or cancelled. Lines that are not JSON (e.g. a library warning)
may appear and are to be ignored by readers.

This module is the protocol's one definition: the event names and fields below are what the CLI writes
(`Reporter`, through `event_line`) and what the plugin reads (plugin/engine.py, through `parse_event`).
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

MODES = ("auto", "bar", "json", "none")

PROGRESS, MESSAGE, DONE, ERROR, CANCELLED = "progress", "message", "done", "error", "cancelled"
# Every event and its fields, in the order they are written.
EVENTS: dict[str, tuple[str, ...]] = {
    PROGRESS: ("fraction",),
    MESSAGE: ("level", "text"),
    DONE: ("result",),
    ERROR: ("message", "exit"),
    CANCELLED: ("exit",),
}
FINAL_EVENTS = (DONE, ERROR, CANCELLED)  # a job ends with exactly one of them
CANCELLED_EXIT = 130  # the exit code of a cancelled job (as after Ctrl-C)


def event_line(event: str, **fields: Any) -> str:
    """One protocol line (without its newline); ValueError for an event or fields the protocol does not have."""
    if tuple(fields) != EVENTS.get(event):
        raise ValueError(f"not a progress event: {event} {sorted(fields)}")
    return json.dumps({"event": event, **fields})


def parse_event(line: str) -> dict[str, Any] | None:
    """One progress line as a dict with an 'event' key, or None for any other output (logs, warnings)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("event"), str) else None


class Reporter:
    """Progress, messages and the end of a job, in one of MODES ('auto': a bar when stderr is a terminal)."""

    def __init__(self, mode: str = "auto", desc: str = "", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "none"
        self.mode, self.desc = mode, desc
        self._bar = None
        self._percent = -1
        self.ended = False

    def _emit(self, event: str, **fields: Any) -> None:
        self.stream.write(event_line(event, **fields) + "\n")
        self.stream.flush()

    def progress(self, fraction: float) -> None:
        """The runtime's progress callback (0..1)."""
        percent = int(max(0.0, min(1.0, fraction)) * 100)
        if percent <= self._percent:
            return
        self._percent = percent
        if self.mode == "json":
            self._emit(PROGRESS, fraction=round(percent / 100, 2))
        elif self.mode == "bar":
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=100, desc=self.desc, unit="%", leave=False, file=self.stream)
            self._bar.update(percent - self._bar.n)

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def message(self, level: str, text: str) -> None:
        """A note the user should see; in text modes notes are printed with the summary instead."""
        if self.mode == "json":
            self._emit(MESSAGE, level=level, text=text)

    def done(self, result: dict[str, Any]) -> None:
        self.close_bar()
        self.ended = True
        if self.mode == "json":
            self._emit(DONE, result=result)

    def error(self, message: str, code: int = 2) -> None:
        self.close_bar()
        self.ended = True
        if self.mode == "json":
            self._emit(ERROR, message=message, exit=code)
        else:
            self.stream.write(f"contrasat: error: {message}\n")

    def cancelled(self) -> None:
        self.close_bar()
        self.ended = True
        if self.mode == "json":
            self._emit(CANCELLED, exit=CANCELLED_EXIT)
        else:
            self.stream.write("contrasat: cancelled\n")
