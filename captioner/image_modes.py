"""Any Pillow pixel mode as a new 8-bit RGB image: transparency flattened onto white, high-bit-depth
grey scaled (not clipped), CMYK through its embedded ICC profile.

`captioner.images.load_image` calls `to_rgb` on every decoded frame, so each mode's rule lives here once.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

_WHITE = (255, 255, 255)


class UnsupportedMode(ValueError):
    """A pixel mode with no way to RGB; the message is for the person who supplied the image."""


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to a new 8-bit RGB image (never returns ``im`` itself)."""
    mode = im.mode
    if mode == "La":  # premultiplied grey + alpha has no direct route to RGBA
        im, mode = im.convert("LA"), "LA"
    if mode in ("RGBA", "LA", "PA", "RGBa") or (mode in ("P", "L", "RGB", "1") and "transparency" in im.info):
        return _flatten(im.convert("RGBA"))
    if mode.startswith("I") or mode == "F":
        return _grey_to_rgb(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    try:
        return im.convert("RGB")
    except ValueError:
        try:  # modes without a direct RGB conversion go through RGBA
            return _flatten(im.convert("RGBA"))
        except ValueError as exc:
            raise UnsupportedMode(f"Images with {mode} colours are not supported.") from exc


def _flatten(rgba: Image.Image) -> Image.Image:
    """Composite an RGBA image onto white."""
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


_STRIP_PIXELS = 1 << 20  # high-bit-depth images are converted this many pixels at a time


def _grey_to_rgb(im: Image.Image) -> Image.Image:
    """High-bit-depth grey (I;16, I, F) to 8-bit RGB by scaling (Pillow's own conversion clips at 255).

    Two passes over bands of rows, so that no float64 copy of the whole picture is ever made: one
    finds the range of the finite values, one scales each band into the new image.
    """
    width, height = im.size
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    bands = [(0, top, width, min(height, top + rows)) for top in range(0, height, rows)]
    low, high = 0.0, 0.0
    for i, box in enumerate(bands):
        values = _finite_values(im.crop(box))
        low, high = (float(values.min()), float(values.max())) if i == 0 else (min(low, values.min()), max(high, values.max()))
    scale, offset = _grey_scale(im.mode, float(low), float(high))
    out = Image.new("RGB", im.size)
    for box in bands:
        scaled = np.clip(np.rint(_finite_values(im.crop(box)) * scale + offset), 0, 255).astype(np.uint8)
        out.paste(Image.fromarray(scaled, "L"), box[:2])  # pasted as RGB
    return out


def _finite_values(band: Image.Image) -> np.ndarray:
    return np.nan_to_num(np.asarray(band, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _grey_scale(mode: str, low: float, high: float) -> tuple[float, float]:
    """(scale, offset) that map a grey image's values to 0..255."""
    if mode.startswith("I;16"):
        return 1 / 257.0, 0.0  # 65535 -> 255
    if mode == "F" and low >= 0 and high <= 1.0:
        return 255.0, 0.0  # float images are usually 0..1
    if low >= 0 and high <= 255:
        return 1.0, 0.0
    if mode == "I" and low >= 0 and high <= 65535:
        return 1 / 257.0, 0.0  # 16-bit samples stored as 32-bit ints
    if high > low:
        return 255.0 / (high - low), -low * 255.0 / (high - low)  # arbitrary range: stretch
    return 0.0, 0.0


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when there is one; otherwise Pillow's plain formula."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:
            pass  # missing littlecms or a broken profile: fall back below
    return im.convert("RGB")
