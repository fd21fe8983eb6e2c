"""Notes a job reports beside its outputs (unit conversions, repairs, ignored inputs), with a level."""

from __future__ import annotations


class Note(str):
    """A one-line note; `level` is 'info' (a decision the user should know) or 'warning' (something odd)."""

    level: str

    def __new__(cls, text: str, level: str = "info") -> Note:
        note = super().__new__(cls, text)
        note.level = level
        return note


def info(text: str) -> Note:
    return Note(text, "info")


def warning(text: str) -> Note:
    return Note(text, "warning")
