"""Example images for the app's gallery: the PNGs shipped with the built-in model, else rendered scenes."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from captioner.loading import BUILTIN_DIR


@dataclass(frozen=True)
class Example:
    """One gallery image: a display name, PNG bytes, and reference captions when known."""

    name: str
    data: bytes
    references: tuple[str, ...] = field(default=())


def shipped_examples(folder: Path = BUILTIN_DIR) -> list[Example]:
    """PNGs shipped beside the built-in model (`examples/` or the model folder), sorted by name."""
    files = sorted(folder.glob("examples/*.png")) or sorted(folder.glob("*.png"))
    listed = _captions_jsonl(files[0].parent / "captions.jsonl") if files else {}
    return [Example(f.name, f.read_bytes(), _references(f, listed)) for f in files]


def _captions_jsonl(path: Path) -> dict[str, tuple[str, ...]]:
    """References per file from a `captions.jsonl` (as `python -m captioner.scenes` writes it)."""
    refs: dict[str, tuple[str, ...]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                refs[str(row["file"])] = tuple(str(r) for r in row["references"])
            except (ValueError, KeyError, TypeError):
                continue
    return refs


def _references(png: Path, listed: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A shipped example's reference captions: `name.txt` (one per line), captions.jsonl, or its scene seed."""
    txt = png.with_suffix(".txt")
    if txt.exists():
        return tuple(line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip())
    if png.name in listed:
        return listed[png.name]
    return _scene_references(png)


def _scene_references(png: Path) -> tuple[str, ...]:
    """References of `scene_<seed>.png` when re-rendering that seed gives exactly this image."""
    match = re.fullmatch(r"scene_(\d+)\.png", png.name)
    if not match:
        return ()
    from captioner.scenes import make_example

    with Image.open(png) as shipped:
        pixels = np.asarray(shipped.convert("RGB"))
    if pixels.shape[0] != pixels.shape[1]:
        return ()
    image, _, refs = make_example(int(match.group(1)), pixels.shape[0])
    return tuple(refs) if np.array_equal(np.asarray(image.convert("RGB")), pixels) else ()


def rendered_examples(count: int = 6, image_size: int = 128) -> list[Example]:
    """Scenes of the built-in world from fixed evaluation seeds, with their reference captions."""
    from captioner.scenes import EVAL_SEED_OFFSET, make_example

    examples = []
    for i in range(count):
        image, _, refs = make_example(EVAL_SEED_OFFSET + i, image_size)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        examples.append(Example(f"scene-{i + 1}.png", buf.getvalue(), tuple(refs)))
    return examples


def example_images(count: int = 9) -> list[Example]:
    """The gallery: shipped PNGs when the built-in model has them, else freshly rendered scenes."""
    return shipped_examples()[:count] or rendered_examples(count)
