"""The one error type of the training commands."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input the user can fix: reported as one line `contrasat: error: ...` with exit code 2."""
