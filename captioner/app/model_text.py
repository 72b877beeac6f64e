"""What the model picker says when the text it was given does not load: one short line, the text shortened.

No Streamlit here. The loader decides what the text is (a path, a hub id); this only puts its answer in
one line a sidebar can hold: a 3000-character path is shown by its ends, never twice, never whole.
"""

from __future__ import annotations

import errno

from captioner.app.views.text import shorten
from captioner.loading import ModelLoadError
from captioner.models.cache import ModelDoesNotFit

DEFAULT_SPEC = "default"
SHOWN_CHARS = 60  # of the text the user typed
MESSAGE_CHARS = 300  # of any message


def _not_a_model(shown: str) -> str:
    return f"“{shown}” is not a path that exists, nor a valid Hugging Face hub id (owner/name)."


def load_error_line(spec: str, error: BaseException) -> str:
    """One line on why `spec` did not load (the loader's own words where it has them), at most MESSAGE_CHARS."""
    shown = "the default model" if spec == DEFAULT_SPEC else shorten(spec, SHOWN_CHARS)
    text = " ".join(str(error).split())
    if (isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG) or (
        isinstance(error, ModelLoadError) and text.startswith("No such file or directory")
    ):
        return _not_a_model(shown)
    text = text.replace(spec, shown) if spec and spec != DEFAULT_SPEC else text
    if isinstance(error, ModelDoesNotFit):  # the cache's own sentence names the model and the budget
        line = text
    elif isinstance(error, ModelLoadError):
        line = text if shown in text else f"Could not load {shown}: {text}"
    elif isinstance(error, MemoryError):
        line = f"Could not load {shown}: it does not fit in the memory available."
    else:
        line = f"Could not load {shown}: {type(error).__name__}: {text}"
    return shorten(line, MESSAGE_CHARS)
