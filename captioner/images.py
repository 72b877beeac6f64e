"""Load any user-supplied image into a plain, fully decoded RGB ``PIL.Image``.

Every caller (pages, CLI, batch, tests) goes through :func:`load_image`, so the
rules live here once: which formats are accepted, how big an image may be, how
transparency, EXIF orientation, animation and odd pixel modes are handled, and
what a person is told when a file can't be used (:class:`ImageLoadError`).
"""

from __future__ import annotations

import io
import os
import re
from typing import BinaryIO, Union

from PIL import Image

from captioner.files import FileRefused, format_bytes, read_regular_file
from captioner.image_modes import UnsupportedMode, to_rgb

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MAX_DECODE_BYTES",
    "IMAGE_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "SUPPORTED_FORMATS_TEXT",
    "ImageLoadError",
    "ImageSource",
    "load_image",
]

DEFAULT_MAX_PIXELS = 50_000_000  # 50 megapixels, e.g. 8660 x 5773
DEFAULT_MAX_BYTES = 25_000_000  # 25 MB on disk / in the upload
# Memory the decoder may take, judged from the header before any pixel is decoded: a 50-megapixel
# RGB image takes 200 MB in Pillow (4 bytes a pixel); one TIFF tile, which libtiff allocates whole,
# at most 64 MB.
MAX_DECODE_BYTES = 256_000_000
MAX_TIFF_TILE_BYTES = 64_000_000
_FILE_REASONS = {"missing": "missing", "not_regular": "unsupported", "too_large": "too_large", "unreadable": "unreadable"}

# Pillow decoders we let run. Keeping this short means hostile files never reach
# the rarely used plugins, and EPS/PS (which shells out to Ghostscript) or PDF never run.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
SUPPORTED_FORMATS_TEXT = "JPEG, PNG, WebP, GIF, BMP, TIFF"
# File name extensions of those formats (used to pick files out of archives, upload widgets).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff")

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO, Image.Image]

_EXIF_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Leading bytes of the formats above: a file that starts like one of them but
# does not open is damaged, not "some other kind of file".
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}


class ImageLoadError(ValueError):
    """The input can't be used as an image; ``str(err)`` is written for the person who supplied it.

    ``reason`` is a short machine-readable code: ``"missing"``, ``"empty"``,
    ``"too_large"``, ``"unsupported"``, ``"corrupt"`` or ``"unreadable"``.
    """

    def __init__(self, message: str, reason: str = "unsupported") -> None:
        super().__init__(message)
        self.reason = reason


def load_image(
    source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, max_bytes: int | None = DEFAULT_MAX_BYTES
) -> Image.Image:
    """Decode ``source`` into a new RGB image, upright and with transparency flattened onto white.

    ``source`` may be raw bytes, a path, a binary file object or an already opened
    PIL image (used at its current frame; it is not modified or closed). Only the
    first frame of an animation is decoded. The size in pixels is checked against
    ``max_pixels`` from the header, before any pixel data is decoded; ``max_bytes``
    bounds the file size. ``None`` disables a limit (Pillow's own decompression-bomb
    limit of about 179 megapixels still applies).

    Raises:
        ImageLoadError: for anything that is not a readable, acceptable image.
    """
    if isinstance(source, Image.Image):
        return _decode(source, max_pixels)

    data = _read_source(source, max_bytes)
    try:
        im = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(exc, max_pixels) from exc
    except Exception as exc:  # UnidentifiedImageError, or a plugin tripping over hostile bytes
        raise _unidentified_error(data) from exc
    with im:
        return _decode(im, max_pixels)


def _decode(im: Image.Image, max_pixels: int | None) -> Image.Image:
    """Check the header size, then decode the current frame into a new upright RGB image."""
    _check_pixels(im.size, max_pixels)
    _check_decode_memory(im)
    try:
        im.load()
        return to_rgb(_upright(im))
    except ImageLoadError:
        raise
    except UnsupportedMode as exc:
        raise ImageLoadError(str(exc), "unsupported") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(exc, max_pixels) from exc
    except MemoryError as exc:
        raise ImageLoadError("The image is too large to decode in the memory available.", "too_large") from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, struct.error, ...
        raise ImageLoadError("The image is truncated or corrupt.", "corrupt") from exc


def _read_source(source: ImageSource, max_bytes: int | None) -> bytes:
    """Return the bytes of ``source``, enforcing ``max_bytes`` and refusing empty input."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = _read_path(os.fspath(source), max_bytes)
    elif hasattr(source, "read"):
        try:
            data = source.read() if max_bytes is None else source.read(max_bytes + 1)
        except OSError as exc:
            raise ImageLoadError(f"The file could not be read: {exc}", "unreadable") from exc
        if not isinstance(data, bytes):
            raise TypeError("load_image needs a file opened in binary mode ('rb')")
    else:
        raise TypeError(f"load_image can't read a {type(source).__name__}; pass bytes, a path, a file or a PIL image")

    if not data:
        raise ImageLoadError("The file is empty.", "empty")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageLoadError(
            f"The file is too large: {format_bytes(len(data))}; the limit is {format_bytes(max_bytes)}.", "too_large"
        )
    return data


def _read_path(path: str, max_bytes: int | None) -> bytes:
    """A regular file's bytes (files.read_regular_file): FIFOs, devices and folders are refused unopened."""
    try:
        return read_regular_file(path, max_bytes, "an image")
    except FileRefused as exc:
        raise ImageLoadError(str(exc), _FILE_REASONS[exc.reason]) from exc


def _check_pixels(size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageLoadError("The image is truncated or corrupt.", "corrupt")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageLoadError(
            f"The image is too large: {width} x {height} pixels; the limit is {_megapixels(max_pixels)}.", "too_large"
        )


def _check_decode_memory(im: Image.Image) -> None:
    """Refuse an image whose decoding would take more than MAX_DECODE_BYTES (or a TIFF tile over MAX_TIFF_TILE_BYTES)."""
    width, height = im.size
    bytes_per_pixel = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4
    tags = getattr(im, "tag_v2", None)
    if tags is not None:  # TIFF: libtiff decodes into buffers sized by the file's own sample and tile tags
        samples = _first_int(tags.get(277), 1)
        bytes_per_sample = -(-max(_ints(tags.get(258)) or [8]) // 8)
        bytes_per_pixel = max(bytes_per_pixel, samples * bytes_per_sample)
        tile_w, tile_h = _first_int(tags.get(322), 0), _first_int(tags.get(323), 0)
        tile_bytes = tile_w * tile_h * samples * bytes_per_sample
        if tile_bytes > MAX_TIFF_TILE_BYTES:
            raise ImageLoadError(
                f"The TIFF's tiles claim {tile_w} x {tile_h} pixels each ({format_bytes(tile_bytes)} to decode one); "
                f"the limit is {format_bytes(MAX_TIFF_TILE_BYTES)}.",
                "too_large",
            )
    needed = width * height * bytes_per_pixel
    if needed > MAX_DECODE_BYTES:
        raise ImageLoadError(
            f"The image would take {format_bytes(needed)} of memory to decode ({width} x {height} pixels, "
            f"{bytes_per_pixel} bytes each); the limit is {format_bytes(MAX_DECODE_BYTES)}.",
            "too_large",
        )


def _ints(value) -> list[int]:
    values = value if isinstance(value, tuple) else (value,)
    return [v for v in values if isinstance(v, int)]


def _first_int(value, default: int) -> int:
    found = _ints(value)
    return found[0] if found else default


def _bomb_error(exc: Exception, max_pixels: int | None) -> ImageLoadError:
    """Pillow's own limit fired before we saw the size; its message holds the pixel count."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" about {_megapixels(int(match.group(1)))}" if match else ""
    limit = max_pixels if max_pixels is not None else 2 * (Image.MAX_IMAGE_PIXELS or 0)
    limit_text = f"; the limit is {_megapixels(limit)}" if limit else ""
    return ImageLoadError(f"The image is too large:{size}{limit_text}.", "too_large")


def _unidentified_error(data: bytes) -> ImageLoadError:
    """Explain why Pillow could not open ``data``, naming well-known non-image formats."""
    head = data[:1024]
    text_head = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if any(data.startswith(sig) for sig in _IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return ImageLoadError("The image is truncated or corrupt.", "corrupt")
    if b"<svg" in text_head or (text_head.startswith(b"<?xml") and b"svg" in text_head):
        return ImageLoadError("SVG files are not supported; export it as PNG or JPEG first.")
    if head.startswith(b"%PDF"):
        return ImageLoadError("PDF files are not supported; export the page as PNG or JPEG first.")
    if head.startswith(b"%!PS") or head.startswith(b"\xc5\xd0\xd3\xc6"):
        return ImageLoadError("PostScript/EPS files are not supported; export it as PNG or JPEG first.")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return ImageLoadError("HEIC/HEIF photos are not supported; convert it to JPEG or PNG first.")
        if brand in (b"avif", b"avis"):
            return ImageLoadError("AVIF images are not supported; convert it to JPEG or PNG first.")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return ImageLoadError(f"This is a ZIP archive, not an image ({SUPPORTED_FORMATS_TEXT} are supported).")
    return ImageLoadError(f"This file is not an image we can read ({SUPPORTED_FORMATS_TEXT} are supported).")


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block is ignored rather than fatal."""
    # Read the tag ourselves instead of ImageOps.exif_transpose, which also rewrites
    # the metadata and can fail on malformed EXIF/XMP after the tag itself parsed fine.
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:
        return im
    method = _ORIENTATION_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return im.transpose(method) if method is not None else im


def _megapixels(pixels: int) -> str:
    if pixels < 1_000_000:
        return f"{pixels:,} pixels"
    return f"{round(pixels / 1_000_000, 1):g} megapixels"
