"""Files for the batch tests: images drawn here (not by the built-in model's renderer) and an output file's rows."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

from captioner.batch.outputs import read_records


def drawing(size=(80, 60), colour=(200, 40, 40), mode="RGB") -> Image.Image:
    """A filled circle on a light background, converted to `mode`."""
    image = Image.new("RGB", size, (240, 240, 230))
    ImageDraw.Draw(image).ellipse([size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4], fill=colour)
    return image.convert(mode)


def image_bytes(fmt="PNG", **kw) -> bytes:
    """A `drawing(**kw)` encoded as `fmt`."""
    buf = io.BytesIO()
    drawing(**kw).save(buf, fmt)
    return buf.getvalue()


def read_rows(path: Path) -> list[dict]:
    """Every row of a batch output file, its format from the suffix (.parquet, .csv, .jsonl)."""
    fmt = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}[Path(path).suffix]
    return [r for chunk in read_records(str(path), fmt) for r in chunk]
