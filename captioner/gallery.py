"""Example images for the app's gallery: the PNGs shipped with the built-in model, else rendered scenes."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

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
    return [Example(f.name, f.read_bytes(), _references_beside(f)) for f in files]


def _references_beside(png: Path) -> tuple[str, ...]:
    """Captions in `name.txt` next to `name.png` (one per line), if present."""
    txt = png.with_suffix(".txt")
    if not txt.exists():
        return ()
    return tuple(line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip())


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


def example_images(count: int = 6) -> list[Example]:
    """The gallery: shipped PNGs when the built-in model has them, else freshly rendered scenes."""
    return shipped_examples()[:count] or rendered_examples(count)
