"""Reference captions typed as text (the app's Batch page): lines of `file name: caption one | caption two`.

Each line is read as a row of a list file is (`captioner.batch.lists.list_entry`: the same '|' separator,
the same caps on references and names). A typed name matches a file by its full name, its base name, or
its base name without the extension, since people type what they see ("cat", "cat.jpg", "pack.zip/cat.jpg").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from captioner.batch.lists import MAX_REFERENCES, list_entry
from captioner.batch.rows import CaptionRow


@dataclass
class References:
    """Typed reference captions: per name, its captions and the line that named it first."""

    captions: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one message per line that was skipped


def parse_references(text: str) -> References:
    """Reference captions from lines of `file name: caption one | caption two` (blank lines, # comments ignored).

    A line without that shape, or over the list files' caps, is skipped with a message naming it; the other
    lines still count.
    """
    refs = References()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, captions = _name_and_captions(line)
        entry = list_entry(f"line {number}", name, captions)
        if sep and entry.problem:
            refs.problems.append(f"Reference line {number} is skipped: {entry.problem}.")
        elif not sep or not entry.location or not entry.references:
            refs.problems.append(
                f"Reference line {number} should read 'file name: caption | another caption', not {line[:60]!r}: skipped."
            )
        elif len(refs.captions.get(entry.location, ())) + len(entry.references) > MAX_REFERENCES:
            # the cap is per image: lines that repeat a name must not add up past it
            refs.problems.append(
                f"Reference line {number} is skipped: {entry.location[:60]!r} would have more than {MAX_REFERENCES} references."
            )
        else:
            refs.captions.setdefault(entry.location, []).extend(entry.references)
            refs.lines.setdefault(entry.location, number)
    return refs


def _name_and_captions(line: str) -> tuple[str, str, str]:
    """A line split at the colon after its name; a Windows drive's colon (`C:\\photos\\cat.jpg: a cat`) is the name's."""
    name, sep, captions = line.partition(":")
    if len(name) == 1 and name.isascii() and name.isalpha() and captions[:1] in ("\\", "/"):
        path, sep, captions = captions.partition(":")
        return f"{name}:{path}", sep, captions
    return name, sep, captions


def name_keys(name: str) -> tuple[str, str, str]:
    """The names a typed line may give a file by: its full name, base name, base name without extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name, base, base.rsplit(".", 1)[0]


def references_for(name: str, refs: Mapping[str, Sequence[str]]) -> list[str]:
    """References for a file: by its full name, base name, or base name without extension."""
    for key in name_keys(name):
        if key in refs:
            return list(refs[key])
    return []


def attach_references(
    rows: Sequence[CaptionRow],
    typed: References,
    known: Mapping[str, Sequence[str]] | None = None,
    batch_names: Sequence[str] = (),
) -> tuple[list[CaptionRow], list[str]]:
    """Rows with their references (typed lines first, then `known` ones such as the examples'), and a
    message for each typed line whose name matches no file of the batch (`rows` and `batch_names`)."""
    refs = {**{k: list(v) for k, v in (known or {}).items()}, **typed.captions}
    out = [replace(r, references=references_for(r.path, refs)) for r in rows]
    names = {key for name in [*(r.path for r in rows), *batch_names] for key in name_keys(name)}
    unmatched = [
        f"Reference line {typed.lines[k]} names {k!r}, which is not in the batch." for k in typed.captions if k not in names
    ]
    return out, unmatched
