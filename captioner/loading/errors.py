"""The one error type of loading, and how its messages are worded.

Every failure while loading a model raises `ModelLoadError` with one message meant for a person;
errors from other modules (a refused file, a library's own exception) are turned into it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from captioner.errors import one_line
from captioner.files import FileRefused, check_regular_file

__all__ = ["ModelLoadError", "checked_file", "name_list", "one_line"]


class ModelLoadError(Exception):
    """A model could not be loaded; the message says why in plain words."""


def checked_file(path: Path, max_bytes: int, what: str) -> Path:
    """`path`, once it is known to be a regular file within `max_bytes` (else a ModelLoadError)."""
    try:
        return check_regular_file(path, max_bytes, what)
    except FileRefused as e:
        raise ModelLoadError(str(e)) from None


def name_list(items: Sequence[str], n: int = 8) -> str:
    """The first `n` items, comma-separated, and how many more there are."""
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more
