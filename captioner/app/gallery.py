"""Example images for the app's gallery: the PNGs shipped with the built-in model and their captions file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from captioner.loading import BUILTIN_DIR

CAPTIONS_FILE = "captions.jsonl"  # one {"file": ..., "references": [...]} per line, written when the model ships


@dataclass(frozen=True)
class Example:
    """One gallery image: a display name, PNG bytes, and reference captions when known."""

    name: str
    data: bytes
    references: tuple[str, ...] = field(default=())


def shipped_examples(folder: Path = BUILTIN_DIR / "examples") -> list[Example]:
    """The PNGs in `folder`, sorted by name, with their references from its captions file."""
    files = sorted(folder.glob("*.png"))
    listed = _captions_jsonl(folder / CAPTIONS_FILE)
    return [Example(f.name, f.read_bytes(), listed.get(f.name, ())) for f in files]


def _captions_jsonl(path: Path) -> dict[str, tuple[str, ...]]:
    """References per file name; lines that are not such records are skipped."""
    refs: dict[str, tuple[str, ...]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                refs[str(row["file"])] = tuple(str(r) for r in row["references"])
            except (ValueError, KeyError, TypeError):
                continue
    return refs


def example_images(count: int = 9) -> list[Example]:
    """The gallery: the first `count` shipped examples."""
    return shipped_examples()[:count]
