"""Images as the app shows them: scaled for display, as the model saw them, as PNG bytes."""

from __future__ import annotations

import io

from PIL import Image


def display_image(image: Image.Image, side: int = 320) -> Image.Image:
    """The image scaled so its longer side is `side` pixels (small images enlarged, sharp edges kept)."""
    w, h = image.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale >= 2 else Image.BILINEAR
    return image.convert("RGB").resize(size, resample)


def model_input(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image as the model sees it: stretched whole to its input `size` (height, width), nothing cropped."""
    h, w = size
    return image.convert("RGB").resize((w, h), Image.BICUBIC)


def png_bytes(image: Image.Image) -> bytes:
    """The image as a PNG file's bytes (downloads, data URIs)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
