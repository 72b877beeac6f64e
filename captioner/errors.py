"""An error as one line for a person: the rule every command, page and loader uses to show one."""

from __future__ import annotations

MAX_ERROR_CHARS = 200


def one_line(e: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """The first non-empty line of `e`'s message (its type's name when it has none), whitespace
    collapsed, cut to `limit` characters with an ellipsis."""
    lines = [" ".join(line.split()) for line in str(e).splitlines()]
    text = next((line for line in lines if line), type(e).__name__)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unforeseen_line(e: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """An error nobody foresaw as one line: its type's name, then `one_line(e)` (the type tells a
    KeyError's bare key or an OSError's number from a sentence)."""
    return f"{type(e).__name__}: {one_line(e, limit)}"
