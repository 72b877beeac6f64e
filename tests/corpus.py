"""A corpus of hostile and awkward inputs, each with the outcome we expect.

Files are generated, not committed: ``build_corpus(dir)`` writes every case in a
second or two and returns :class:`Case` objects that say what each file is and
what loading it must give, so the same corpus drives the tests of ``load_image``,
``read_image_archive``, the CLI and the Streamlit pages.

    python -m tests.corpus OUT_DIR      # writes the files and prints the table
"""

from __future__ import annotations

import atexit
import functools
import io
import os
import shutil
import struct
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from PIL import Image

__all__ = ["ARCHIVE_CASES", "CASES", "IMAGE_CASES", "Case", "build_archive_corpus", "build_corpus", "build_image_corpus"]

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
Pixel = tuple[tuple[int, int], tuple[int, int, int]]  # ((x, y), (r, g, b))


@dataclass(frozen=True)
class Case:
    """One corpus file and what must happen when it is loaded.

    ``kind="image"`` cases are for ``load_image``; ``kind="archive"`` cases for
    ``read_image_archive``. For ``expected="error"`` the error message must contain
    ``message_contains`` (case-insensitive). For ``"ok"`` the optional checks apply.
    """

    name: str
    filename: str
    description: str
    expected: Literal["ok", "error"]
    make: Callable[[], bytes] = field(repr=False, compare=False)
    message_contains: str | None = None
    kind: Literal["image", "archive"] = "image"
    expect_size: tuple[int, int] | None = None  # (width, height) after EXIF rotation
    expect_pixels: tuple[Pixel, ...] = ()  # colours at points, within `tolerance` per channel
    tolerance: int = 40
    expect_images: int | None = None  # archive: how many images come back
    expect_skipped: int | None = None  # archive: how many entries are listed as skipped
    max_seconds: float | None = None  # loading must not take longer (e.g. bombs, 3000 frames)
    special: Callable[[Path], None] | None = field(default=None, repr=False, compare=False)  # makes a FIFO, a link...
    heavy: bool = False  # takes seconds and hundreds of MB to decode (49 megapixels): a slow test
    path: Path | None = None  # set by build_*_corpus

    def data(self) -> bytes:
        """The file's bytes (read from ``path`` once built, otherwise generated); not for ``special`` cases."""
        return self.path.read_bytes() if self.path is not None else self.make()

    def image_problems(self, image: Image.Image) -> list[str]:
        """What is wrong with a successfully loaded image for this case (empty list: all good)."""
        problems = []
        if image.mode != "RGB":
            problems.append(f"mode is {image.mode}, expected RGB")
        if self.expect_size is not None and image.size != self.expect_size:
            problems.append(f"size is {image.size}, expected {self.expect_size}")
            return problems
        rgb = image.convert("RGB")
        for (x, y), want in self.expect_pixels:
            got = rgb.getpixel((x, y))
            if any(abs(g - w) > self.tolerance for g, w in zip(got, want)):
                problems.append(f"pixel {(x, y)} is {got}, expected about {want}")
        return problems

    def error_problems(self, message: str) -> list[str]:
        """What is wrong with an error message for this case (empty list: all good)."""
        if self.expected != "error":
            return [f"expected success, got error: {message}"]
        if self.message_contains and self.message_contains.lower() not in message.lower():
            return [f"message {message!r} lacks {self.message_contains!r}"]
        return []


# --- small builders -----------------------------------------------------------


def _encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _halves(size: tuple[int, int], first, second, mode: str = "RGB", vertical: bool = False) -> Image.Image:
    """Left/right halves (or top/bottom with ``vertical``) in two colours."""
    w, h = size
    im = Image.new(mode, size, first)
    box = (0, h // 2, w, h) if vertical else (w // 2, 0, w, h)
    im.paste(second, box)
    return im


def _lr(size, left, right) -> tuple[Pixel, ...]:
    """Expected colours near the centre of the left and right halves."""
    w, h = size
    return (((w // 4, h // 2), left), ((3 * w // 4, h // 2), right))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _png_bad_crc() -> bytes:
    data = bytearray(_encode(Image.new("RGB", (8, 8), RED), "PNG"))
    data[29] ^= 0xFF  # first byte of the IHDR CRC (8 signature + 8 length/type + 13 body)
    return bytes(data)


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (8, 8), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline start-of-frame: FFC0 len(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _jpeg_with_app1(payload: bytes) -> bytes:
    data = _encode(_halves((32, 16), RED, BLUE), "JPEG", quality=95)
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def _exif_rotated_jpeg(orientation: int) -> bytes:
    """Upright: 60 x 40, red top half, blue bottom half; stored so that ``orientation`` restores it."""
    upright = _halves((60, 40), RED, BLUE, vertical=True)
    undo = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}
    stored = upright.transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def _gif_frame(colour_index: int, width: int, height: int) -> bytes:
    """One GIF frame of a single palette index, LZW-coded by hand (fast for thousands of frames)."""
    # Minimum code size 2: CLEAR=4, END=5. A CLEAR every two pixels keeps codes at 3 bits.
    codes = []
    for i in range(0, width * height, 2):
        codes += [4] + [colour_index] * min(2, width * height - i)
    codes.append(5)
    bits = sum(code << (3 * i) for i, code in enumerate(codes))
    packed = bits.to_bytes((3 * len(codes) + 7) // 8, "little")
    control = b"\x21\xf9\x04\x04" + struct.pack("<H", 2) + b"\x00\x00"  # keep previous frame, 20 ms
    descriptor = b"\x2c" + struct.pack("<4H", 0, 0, width, height) + b"\x00"
    return control + descriptor + b"\x02" + bytes([len(packed)]) + packed + b"\x00"


def _many_frame_gif(n_frames: int = 3000, size: int = 4) -> bytes:
    """First frame red, then ``n_frames - 1`` blue frames."""
    header = b"GIF89a" + struct.pack("<HH", size, size) + b"\x80\x00\x00" + bytes(RED) + bytes(BLUE)
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return header + loop + _gif_frame(0, size, size) + _gif_frame(1, size, size) * (n_frames - 1) + b"\x3b"


def _animated(fmt: str, **params) -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, BLUE, GREEN)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


def _rgba_png() -> bytes:
    """Three vertical bands: opaque red, 50% black, fully transparent blue."""
    im = Image.new("RGBA", (30, 10), (0, 0, 255, 0))
    im.paste((255, 0, 0, 255), (0, 0, 10, 10))
    im.paste((0, 0, 0, 128), (10, 0, 20, 10))
    return _encode(im, "PNG")


def _palette_transparent(fmt: str) -> bytes:
    im = _halves((20, 10), 0, 1, mode="P")
    im.putpalette(list(RED) + list(BLUE))
    return _encode(im, fmt, transparency=1)


def _gradient16_png() -> bytes:
    values = np.tile(np.arange(256, dtype=np.uint32) * 257, (4, 1)).astype(np.uint16)
    return _encode(Image.fromarray(values), "PNG")  # mode I;16


def _gradient_tiff(dtype, scale: float) -> bytes:
    values = np.tile(np.arange(256, dtype=np.float64) * scale, (4, 1)).astype(dtype)
    return _encode(Image.fromarray(values), "TIFF")  # mode I (int32) or F (float32)


_GRADIENT_PIXELS = (((0, 1), BLACK), ((128, 1), (128, 128, 128)), ((255, 1), WHITE))


def _svg(prolog: bool) -> bytes:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    return (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- drawing -->\n' + svg) if prolog else svg


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _eps() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"


def _heic() -> bytes:
    return struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic" + bytes(200)


def _avif() -> bytes:
    return struct.pack(">I", 24) + b"ftypavif" + struct.pack(">I", 0) + b"avifmif1" + bytes(200)


def _small_png(colour=RED) -> bytes:
    return _encode(Image.new("RGB", (4, 4), colour), "PNG")


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


@dataclass
class _RawEntry:
    name: str
    payload: bytes  # as stored (already compressed when method == 8)
    crc: int
    size: int  # declared unpacked size (may lie)
    method: int = 8  # 0 stored, 8 deflate
    flags: int = 0  # bit 0: encrypted


def _raw_zip(entries: list[_RawEntry]) -> bytes:
    """Write a ZIP by hand, so that names, sizes, CRCs and flags can be anything we like."""
    out, central = bytearray(), bytearray()
    date = (1 << 5) | 1  # 1980-01-01
    for e in entries:
        name = e.name.encode()
        offset = len(out)
        out += (
            struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, e.flags, e.method, 0, date, e.crc, len(e.payload), e.size, len(name), 0)
            + name
            + e.payload
        )
        central += (
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                e.flags,
                e.method,
                0,
                date,
                e.crc,
                len(e.payload),
                e.size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + eocd)


def _deflated_zeros(mib: int) -> bytes:
    """Raw deflate of ``mib`` MiB of zeros, built without ever holding them in memory."""
    # After a full flush the compressor's state is reset, so every 1 MiB block compresses
    # to the same ~1 KB: compress one and repeat it.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mib + compressor.flush(zlib.Z_FINISH)


def _zeros_crc(mib: int) -> int:
    crc, block = 0, bytes(1 << 20)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return crc


_CRC_500_MIB_ZEROS = 0x876BEF2A  # _zeros_crc(500), precomputed: computing it takes ~0.5 s


def _zip_bomb() -> bytes:
    return _raw_zip([_RawEntry("bomb.png", _deflated_zeros(500), _CRC_500_MIB_ZEROS, 500 << 20)])


def _zip_bomb_many() -> bytes:
    payload, crc = _deflated_zeros(23), _zeros_crc(23)  # 24.1 MB each: under the per-file limit
    return _raw_zip([_RawEntry(f"part{i}.png", payload, crc, 23 << 20) for i in range(10)])


def _zip_lying_size() -> bytes:
    """Declares 1000 bytes, holds 10 MiB of zeros."""
    return _raw_zip([_RawEntry("liar.png", _deflated_zeros(10), _zeros_crc(10), 1000)])


def _zip_entry(name: str, content: bytes, *, crc: int | None = None, flags: int = 0) -> _RawEntry:
    return _RawEntry(name, content, zlib.crc32(content) if crc is None else crc, len(content), method=0, flags=flags)


def _noise_image(w: int, h: int) -> Image.Image:
    """Incompressible pixels, so that cutting the file in half cuts the pixel data."""
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _exif_bytes(tags: dict[int, int]) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return exif.tobytes()


def _tiff(entries: list[tuple[int, int, int, int | str]], payload: bytes = b"") -> bytes:
    """A little-endian TIFF with one IFD of (tag, type 3=SHORT / 4=LONG, count, value), written by hand so
    that its tags can claim anything; the value "DATA" is the offset of `payload`, stored after the IFD."""
    data_offset = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in sorted(entries):
        value = data_offset if value == "DATA" else value
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + payload


def _tiff_tile_bomb(side: int = 46340) -> bytes:
    """A 16 x 16 deflate TIFF whose tile tags claim `side` x `side` tiles: libtiff would allocate one (2 GB)."""
    payload = zlib.compress(bytes(16 * 16))
    return _tiff(
        [
            (256, 3, 1, 16),
            (257, 3, 1, 16),
            (258, 3, 1, 8),
            (259, 3, 1, 8),
            (262, 3, 1, 1),
            (277, 3, 1, 1),
            (322, 4, 1, side),
            (323, 4, 1, side),
            (324, 4, 1, "DATA"),
            (325, 4, 1, len(payload)),
        ],
        payload,
    )


def _big_grey_tiff(dtype) -> bytes:
    """7000 x 7000 (49 megapixels) float32 or uint16 grey, deflated to ~0.3 MB: a dot every 100 pixels."""
    values = np.zeros((7000, 7000), dtype)
    values[::100, ::100] = 1 if dtype == np.float32 else 65535
    return _encode(Image.fromarray(values), "TIFF", compression="tiff_adobe_deflate")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def _folder(path: Path) -> None:
    path.mkdir()


# --- the cases -------------------------------------------------------------------


def _ok(name, filename, description, make, size=None, pixels=(), **kw) -> Case:
    return Case(name, filename, description, "ok", make, expect_size=size, expect_pixels=tuple(pixels), **kw)


def _err(name, filename, description, make, contains, **kw) -> Case:
    return Case(name, filename, description, "error", make, message_contains=contains, **kw)


def _archive(name, filename, description, make, *, images=None, skipped=None, error=None) -> Case:
    return Case(
        name,
        filename,
        description,
        "error" if error else "ok",
        make,
        message_contains=error,
        kind="archive",
        expect_images=images,
        expect_skipped=skipped,
        max_seconds=5.0,
    )


IMAGE_CASES: list[Case] = [
    # Ordinary files, to prove the rules don't refuse good input.
    _ok(
        "rgb_png",
        "plain.png",
        "Plain RGB PNG, red | blue halves",
        lambda: _encode(_halves((40, 20), RED, BLUE), "PNG"),
        (40, 20),
        _lr((40, 20), RED, BLUE),
        tolerance=0,
    ),
    _ok(
        "rgb_jpeg",
        "plain.jpg",
        "Plain RGB JPEG, red | blue halves",
        lambda: _encode(_halves((40, 20), RED, BLUE), "JPEG", quality=95),
        (40, 20),
        _lr((40, 20), RED, BLUE),
    ),
    _ok(
        "progressive_jpeg",
        "progressive.jpg",
        "Progressive JPEG",
        lambda: _encode(_halves((40, 20), RED, BLUE), "JPEG", progressive=True),
        (40, 20),
        _lr((40, 20), RED, BLUE),
    ),
    _ok(
        "png_named_jpg",
        "actually_png.jpg",
        "A PNG with a .jpg name: content decides, not the name",
        lambda: _encode(_halves((40, 20), RED, BLUE), "PNG"),
        (40, 20),
        _lr((40, 20), RED, BLUE),
    ),
    _ok(
        "bmp",
        "plain.bmp",
        "Windows BMP",
        lambda: _encode(_halves((40, 20), RED, BLUE), "BMP"),
        (40, 20),
        _lr((40, 20), RED, BLUE),
        tolerance=0,
    ),
    _ok(
        "tiff_lzw",
        "plain.tiff",
        "LZW-compressed RGB TIFF",
        lambda: _encode(_halves((40, 20), RED, BLUE), "TIFF", compression="tiff_lzw"),
        (40, 20),
        _lr((40, 20), RED, BLUE),
        tolerance=0,
    ),
    _ok(
        "webp",
        "plain.webp",
        "Lossy WebP",
        lambda: _encode(_halves((40, 20), RED, BLUE), "WEBP", quality=95),
        (40, 20),
        _lr((40, 20), RED, BLUE),
    ),
    _ok(
        "one_pixel",
        "one_pixel.png",
        "A 1 x 1 image is tiny but valid",
        lambda: _encode(Image.new("RGB", (1, 1), GREEN), "PNG"),
        (1, 1),
        [((0, 0), GREEN)],
        tolerance=0,
    ),
    _ok(
        "very_wide",
        "wide.png",
        "10000 x 20 panorama strip: extreme aspect ratios are allowed",
        lambda: _encode(_halves((10000, 20), RED, BLUE), "PNG"),
        (10000, 20),
        _lr((10000, 20), RED, BLUE),
    ),
    _ok(
        "very_tall",
        "tall.jpg",
        "20 x 10000 strip as JPEG",
        lambda: _encode(_halves((20, 10000), RED, BLUE, vertical=True), "JPEG"),
        (20, 10000),
        [((10, 100), RED), ((10, 9900), BLUE)],
    ),
    # Modes other than RGB.
    _ok(
        "rgba_png",
        "rgba.png",
        "RGBA bands: opaque red, 50% black, transparent blue (must turn white)",
        _rgba_png,
        (30, 10),
        [((5, 5), RED), ((15, 5), (127, 127, 127)), ((25, 5), WHITE)],
        tolerance=2,
    ),
    _ok(
        "rgba_webp",
        "rgba.webp",
        "Lossless WebP with alpha: transparent half must turn white",
        lambda: _encode(_halves((20, 10), (255, 0, 0, 255), (0, 0, 255, 0), mode="RGBA"), "WEBP", lossless=True),
        (20, 10),
        _lr((20, 10), RED, WHITE),
        tolerance=2,
    ),
    _ok(
        "la_png",
        "gray_alpha.png",
        "Grey + alpha (LA): opaque black | transparent black",
        lambda: _encode(_halves((20, 10), (0, 255), (0, 0), mode="LA"), "PNG"),
        (20, 10),
        _lr((20, 10), BLACK, WHITE),
        tolerance=0,
    ),
    _ok(
        "palette_transparent_png",
        "palette_alpha.png",
        "Palette PNG whose second colour is transparent",
        lambda: _palette_transparent("PNG"),
        (20, 10),
        _lr((20, 10), RED, WHITE),
        tolerance=0,
    ),
    _ok(
        "palette_transparent_gif",
        "transparent.gif",
        "GIF with a transparent colour",
        lambda: _palette_transparent("GIF"),
        (20, 10),
        _lr((20, 10), RED, WHITE),
        tolerance=0,
    ),
    _ok(
        "palette_png",
        "palette.png",
        "Palette PNG without transparency",
        lambda: _encode(_halves((20, 10), RED, BLUE).quantize(2), "PNG"),
        (20, 10),
        _lr((20, 10), RED, BLUE),
    ),
    _ok(
        "bilevel_png",
        "bilevel.png",
        "1-bit black | white PNG",
        lambda: _encode(_halves((20, 10), 0, 255, mode="1"), "PNG"),
        (20, 10),
        _lr((20, 10), BLACK, WHITE),
        tolerance=0,
    ),
    _ok(
        "gray_jpeg",
        "gray.jpg",
        "Greyscale (L) JPEG",
        lambda: _encode(Image.new("L", (16, 16), 100), "JPEG"),
        (16, 16),
        [((8, 8), (100, 100, 100))],
        tolerance=3,
    ),
    _ok(
        "gray16_png",
        "gray16.png",
        "16-bit grey gradient (I;16): must be scaled to 8 bits, not clipped to white",
        _gradient16_png,
        (256, 4),
        _GRADIENT_PIXELS,
        tolerance=2,
    ),
    _ok(
        "int32_tiff",
        "int32.tiff",
        "32-bit integer TIFF (mode I) holding 16-bit values 0..65535",
        lambda: _gradient_tiff(np.int32, 257),
        (256, 4),
        _GRADIENT_PIXELS,
        tolerance=2,
    ),
    _ok(
        "float_tiff",
        "float.tiff",
        "32-bit float TIFF (mode F) holding 0..1",
        lambda: _gradient_tiff(np.float32, 1 / 255),
        (256, 4),
        _GRADIENT_PIXELS,
        tolerance=2,
    ),
    _ok(
        "cmyk_jpeg",
        "cmyk.jpg",
        "CMYK JPEG (Adobe, inverted): colours must come out right, not inverted",
        lambda: _encode(_halves((20, 10), (0, 255, 255, 0), (255, 255, 0, 0), mode="CMYK"), "JPEG", quality=95),
        (20, 10),
        _lr((20, 10), RED, BLUE),
    ),
    _ok(
        "cmyk_tiff",
        "cmyk.tiff",
        "CMYK TIFF",
        lambda: _encode(_halves((20, 10), (0, 255, 255, 0), (255, 255, 0, 0), mode="CMYK"), "TIFF"),
        (20, 10),
        _lr((20, 10), RED, BLUE),
        tolerance=2,
    ),
    # Orientation and metadata.
    _ok(
        "exif_rotate_6",
        "rotated6.jpg",
        "Stored sideways with EXIF orientation 6: must load upright (60 x 40, red top, blue bottom)",
        lambda: _exif_rotated_jpeg(6),
        (60, 40),
        [((30, 8), RED), ((30, 32), BLUE)],
    ),
    _ok(
        "exif_rotate_8",
        "rotated8.jpg",
        "Stored sideways with EXIF orientation 8: must load upright",
        lambda: _exif_rotated_jpeg(8),
        (60, 40),
        [((30, 8), RED), ((30, 32), BLUE)],
    ),
    _ok(
        "exif_rotate_3",
        "rotated3.jpg",
        "Stored upside down with EXIF orientation 3: must load upright",
        lambda: _exif_rotated_jpeg(3),
        (60, 40),
        [((30, 8), RED), ((30, 32), BLUE)],
    ),
    _ok(
        "exif_corrupt",
        "bad_exif.jpg",
        "JPEG with a garbage EXIF block: the picture still loads",
        lambda: _jpeg_with_app1(b"Exif\x00\x00MM\x00*\x00\x00\xff\xf0" + bytes(range(256)) * 2),
        (32, 16),
        _lr((32, 16), RED, BLUE),
    ),
    _ok(
        "exif_bad_orientation",
        "orientation99.jpg",
        "EXIF orientation 99 (invalid): loaded as stored",
        lambda: _encode(_halves((32, 16), RED, BLUE), "JPEG", exif=_exif_bytes({0x0112: 99})),
        (32, 16),
        _lr((32, 16), RED, BLUE),
    ),
    # Animation: only the first frame, and never walk all frames.
    _ok(
        "gif_3000_frames",
        "many_frames.gif",
        "GIF with 3000 frames of 4 x 4: first frame (red) only, quickly",
        _many_frame_gif,
        (4, 4),
        [((1, 1), RED)],
        tolerance=0,
        max_seconds=1.0,
    ),
    _ok(
        "animated_webp",
        "animated.webp",
        "Animated WebP red, blue, green: first frame (red)",
        lambda: _animated("WEBP", lossless=True),
        (16, 16),
        [((8, 8), RED)],
        tolerance=2,
    ),
    _ok(
        "apng",
        "animated.png",
        "Animated PNG red, blue, green: first frame (red)",
        lambda: _animated("PNG"),
        (16, 16),
        [((8, 8), RED)],
        tolerance=0,
    ),
    # Not images at all.
    _err("empty", "empty.jpg", "Zero-byte file", lambda: b"", "empty"),
    _err(
        "text_as_jpg",
        "notes.jpg",
        "A text file with a .jpg name",
        lambda: b"Shopping list:\n- milk\n- eggs\n" * 20,
        "not an image",
    ),
    _err(
        "html_as_png",
        "page.png",
        "An HTML page saved as .png",
        lambda: b"<!DOCTYPE html><html><body><img src='cat.png'></body></html>",
        "not an image",
    ),
    _err(
        "random_bytes",
        "noise.png",
        "4 KB of random bytes",
        lambda: np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "not an image",
    ),
    _err("svg_as_png", "drawing.png", "SVG named .png", lambda: _svg(prolog=False), "SVG"),
    _err(
        "svg_with_prolog", "drawing.jpg", "SVG with a BOM, XML prolog and comment, named .jpg", lambda: _svg(prolog=True), "SVG"
    ),
    _err("pdf_as_jpg", "scan.jpg", "PDF named .jpg (must not reach any PDF/Ghostscript code)", _pdf, "PDF"),
    _err("eps_as_jpg", "figure.jpg", "EPS named .jpg (Pillow would run Ghostscript)", _eps, "PostScript"),
    _err("heic_as_jpg", "IMG_0001.jpg", "iPhone HEIC (ftypheic header) named .jpg", _heic, "HEIC"),
    _err("avif_as_png", "photo.png", "AVIF (ftypavif header) named .png", _avif, "AVIF"),
    _err(
        "ppm_as_png",
        "netpbm.png",
        "A valid PPM image: Pillow reads it, but only the listed formats are tried",
        lambda: _encode(Image.new("RGB", (4, 4), RED), "PPM"),
        "not an image",
    ),
    _err("zip_as_png", "archive.png", "A ZIP archive named .png", lambda: _zip({"a.png": _small_png()}), "ZIP"),
    # Damaged images.
    _err(
        "truncated_jpeg",
        "truncated.jpg",
        "JPEG cut to half its length",
        lambda: (d := _encode(_noise_image(64, 64), "JPEG"))[: len(d) // 2],
        "truncated or corrupt",
    ),
    _err(
        "truncated_png",
        "truncated.png",
        "PNG cut off inside its pixel data",
        lambda: (d := _encode(_noise_image(64, 64), "PNG"))[: len(d) // 2],
        "truncated or corrupt",
    ),
    _err("png_bad_crc", "bad_crc.png", "PNG whose header checksum is wrong", _png_bad_crc, "truncated or corrupt"),
    _err("png_zero_size", "zero.png", "PNG header claiming 0 x 0 pixels", lambda: _png_claiming(0, 0), "truncated or corrupt"),
    _err("gif_header_only", "header.gif", "Nothing but the GIF signature", lambda: b"GIF89a", "truncated or corrupt"),
    _err(
        "jpeg_markers_only",
        "markers.jpg",
        "JPEG start and end markers with nothing between",
        lambda: b"\xff\xd8\xff\xd9",
        "truncated or corrupt",
    ),
    # Decompression bombs: tiny files whose headers claim huge images.
    _err(
        "png_bomb_40000",
        "bomb40000.png",
        "600-byte PNG claiming 40000 x 40000 pixels",
        lambda: _png_claiming(40000, 40000),
        "too large",
        max_seconds=1.0,
    ),
    _err(
        "png_8000",
        "big8000.png",
        "PNG claiming 8000 x 8000 (64 MP: over our limit, under Pillow's)",
        lambda: _png_claiming(8000, 8000),
        "8000 x 8000",
        max_seconds=1.0,
    ),
    _err(
        "jpeg_sof_60000",
        "bomb60000.jpg",
        "JPEG whose frame header claims 60000 x 60000 pixels",
        lambda: _jpeg_claiming(60000, 60000),
        "too large",
        max_seconds=1.0,
    ),
    _err(
        "tiff_tile_bomb",
        "tiles.tif",
        "146-byte 16 x 16 TIFF whose tile tags claim 46340 x 46340 tiles",
        _tiff_tile_bomb,
        "tiles claim 46340 x 46340",
        max_seconds=1.0,
    ),
    _ok(
        "tiff_float_49mp",
        "float49mp.tif",
        "0.3 MB float TIFF of 7000 x 7000 (49 MP): scaled without float64 copies",
        lambda: _big_grey_tiff(np.float32),
        (7000, 7000),
        [((0, 0), WHITE), ((50, 50), BLACK)],
        tolerance=0,
        heavy=True,
    ),
    _ok(
        "tiff_uint16_49mp",
        "uint16_49mp.tif",
        "0.2 MB 16-bit TIFF of 7000 x 7000 (49 MP)",
        lambda: _big_grey_tiff(np.uint16),
        (7000, 7000),
        [((0, 0), WHITE), ((50, 50), BLACK)],
        tolerance=0,
        heavy=True,
    ),
    # Paths that are not regular files: refused from their metadata, never opened for reading.
    _err(
        "fifo",
        "pipe.png",
        "A FIFO (named pipe) with an image name: refused at once, the next files still load",
        lambda: b"",
        "FIFO",
        special=_fifo,
        max_seconds=1.0,
    ),
    _err(
        "link_to_dev_zero",
        "dev_zero.png",
        "A symlink to /dev/zero: a device that never ends",
        lambda: b"",
        "character device",
        special=_symlink_to("/dev/zero"),
        max_seconds=1.0,
    ),
    _err("folder_named_png", "folder.png", "A folder with an image name", lambda: b"", "a folder", special=_folder),
    _err(
        "broken_link",
        "gone.png",
        "A symlink to a file that does not exist",
        lambda: b"",
        "No such file",
        special=_symlink_to("does-not-exist.png"),
    ),
    _ok(
        "link_to_image",
        "link.png",
        "A symlink to a plain PNG: followed, and the target checked",
        lambda: b"",
        (40, 20),
        _lr((40, 20), RED, BLUE),
        tolerance=0,
        special=_symlink_to("plain.png"),
    ),
]


ARCHIVE_CASES: list[Case] = [
    _archive(
        "zip_three_images",
        "three.zip",
        "Three images (PNG, JPEG, GIF in a folder)",
        lambda: _zip(
            {
                "a.png": _small_png(),
                "b.jpg": _encode(Image.new("RGB", (8, 8), BLUE), "JPEG"),
                "sub/c.gif": _encode(Image.new("P", (8, 8), 0), "GIF"),
            }
        ),
        images=3,
        skipped=0,
    ),
    _archive(
        "zip_with_junk",
        "junk.zip",
        "One image among a folder, __MACOSX, .DS_Store and a readme",
        lambda: _zip(
            {
                "photos/": b"",
                "photos/a.png": _small_png(),
                "__MACOSX/photos/._a.png": b"\0\5\26\7",
                ".DS_Store": b"\0\0\0\1Bud1",
                "photos/readme.txt": b"hello",
            }
        ),
        images=1,
        skipped=1,
    ),
    _archive(
        "zip_path_traversal",
        "traversal.zip",
        "Entries named ../../evil.png and /etc/evil.png: harmless names",
        lambda: _raw_zip([_zip_entry("../../evil.png", _small_png()), _zip_entry("/etc/evil.png", _small_png())]),
        images=2,
        skipped=0,
    ),
    _archive(
        "zip_1000_files",
        "thousand.zip",
        "1000 tiny PNGs: over the 200-image limit",
        lambda: _raw_zip([_zip_entry(f"img{i:04d}.png", _small_png()) for i in range(1000)]),
        error="1000 images",
    ),
    _archive(
        "zip_bomb",
        "bomb.zip",
        "One entry of 500 MiB of zeros in a 0.5 MB file: skipped by its declared size",
        _zip_bomb,
        images=0,
        skipped=1,
    ),
    _archive(
        "zip_bomb_many",
        "bomb_many.zip",
        "Ten 24 MB entries of zeros: 240 MB in total is over the limit",
        _zip_bomb_many,
        error="limit",
    ),
    _archive(
        "zip_lying_size",
        "liar.zip",
        "Entry declaring 1000 bytes that inflates to 10 MiB: never returned",
        _zip_lying_size,
        images=0,
        skipped=1,
    ),
    _archive(
        "zip_encrypted",
        "encrypted.zip",
        "Entry flagged as password-protected",
        lambda: _raw_zip([_zip_entry("secret.png", _small_png(), flags=1), _zip_entry("open.png", _small_png())]),
        images=1,
        skipped=1,
    ),
    _archive(
        "zip_bad_crc",
        "bad_crc.zip",
        "Entry whose checksum does not match: damaged, skipped",
        lambda: _raw_zip([_zip_entry("bad.png", _small_png(), crc=1234), _zip_entry("good.png", _small_png())]),
        images=1,
        skipped=1,
    ),
    _archive("zip_no_entries", "nothing.zip", "A valid ZIP with no entries", lambda: _raw_zip([]), images=0, skipped=0),
    _archive("zip_not_a_zip", "photo.zip", "A PNG named .zip", _small_png, error="not a ZIP"),
    _archive(
        "zip_truncated",
        "truncated.zip",
        "ZIP cut in half (no central directory)",
        lambda: (d := _zip({"a.png": _small_png(), "b.png": _small_png(BLUE)}))[: len(d) // 2],
        error="not a ZIP",
    ),
    _archive("zip_empty_file", "empty.zip", "Zero-byte upload", lambda: b"", error="empty"),
]

CASES: list[Case] = IMAGE_CASES + ARCHIVE_CASES
assert len({c.filename for c in CASES}) == len(CASES), "file names must be unique (one folder for all)"
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def _build(cases: list[Case], directory: str | Path) -> list[Case]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    built = []
    for case in cases:
        path = directory / case.filename
        if os.path.lexists(path):
            path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
        if case.special is not None:
            case.special(path)
        else:
            path.write_bytes(case.make())
        built.append(replace(case, path=path))
    return built


def _chosen(cases: list[Case], heavy: bool, paths: bool) -> list[Case]:
    return [c for c in cases if (heavy or not c.heavy) and (paths or c.special is None)]


def build_image_corpus(directory: str | Path, heavy: bool = False, paths: bool = False) -> list[Case]:
    """Write the image cases (for ``load_image``) under ``directory``; return them with ``path`` set.

    Only when asked: the ``heavy`` cases (49-megapixel TIFFs: seconds and ~200 MB each to write), and the
    ``paths`` cases that exist only as paths, not bytes (a FIFO, links, a folder: ``data()`` would block
    or fail on them, so they are for callers that pass paths, as the CLI does)."""
    return _build(_chosen(IMAGE_CASES, heavy, paths), directory)


def build_archive_corpus(directory: str | Path) -> list[Case]:
    """Write the ZIP cases (for ``read_image_archive``) under ``directory``."""
    return _build(ARCHIVE_CASES, directory)


def build_corpus(directory: str | Path, heavy: bool = False, paths: bool = False) -> list[Case]:
    """Write every case under ``directory`` (the ``heavy`` and ``paths`` ones only when asked)."""
    return _build(_chosen(CASES, heavy, paths), directory)


# --- model files and folders --------------------------------------------------------
# Each case writes a model (or something posing as one) into an empty folder and names the spec to
# load; loading it must end in a ModelLoadError whose message contains `message_contains`, with no
# code from the folder run (the auto_map cases ship a .py that would write RAN beside itself).


@dataclass(frozen=True)
class ModelCase:
    """A model file or folder a user may hand to ``load_captioner``, and the message it must get."""

    name: str
    description: str
    build: Callable[[Path], Path] = field(repr=False, compare=False)  # empty folder -> the spec to load
    message_contains: str


_CODE_THAT_MUST_NOT_RUN = "import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('ran')\n"


@functools.lru_cache(maxsize=None)
def _template(kind: str) -> Path:
    """A model folder built once per process and copied for each case: "hf", or a tokenizer layout."""
    from tests.tiny_models import make_gpt2_visiongpt2_dir, make_tiny_hf_dir

    folder = Path(tempfile.mkdtemp(prefix=f"corpus-{kind}-"))
    atexit.register(shutil.rmtree, folder, True)
    make_tiny_hf_dir(folder) if kind == "hf" else make_gpt2_visiongpt2_dir(folder, kind)
    return folder


def _copy_of(kind: str, folder: Path) -> Path:
    shutil.copytree(_template(kind), folder, dirs_exist_ok=True)
    return folder


def _seed(folder: Path, mutate: Callable[[dict], None] | None = None, layout: str = "save_pretrained_v4") -> Path:
    """A tiny VisionGPT2 captioner.pt with GPT-2's tokenizer beside it; `mutate` edits its state dict first."""
    import torch

    path = _copy_of(layout, folder) / "captioner.pt"
    if mutate is not None:
        state = torch.load(path, weights_only=True)
        mutate(state)
        torch.save(state, path)
    return path


def _seed_with(
    name: str, content: str | None = None, special: Callable[[Path], None] | None = None, layout: str = "save_pretrained_v4"
) -> Callable[[Path], Path]:
    """A builder: the tiny seed folder, with file `name` replaced by `content` (text) or made by `special`."""

    def build(folder: Path) -> Path:
        path = _seed(folder, layout=layout)
        target = folder / name
        if os.path.lexists(target):
            target.unlink()
        special(target) if special is not None else target.write_text(content)
        return path

    return build


def _state(mutate: Callable[[dict], None]) -> Callable[[Path], Path]:
    return lambda folder: _seed(folder, mutate)


def _set(key: str, make) -> Callable[[dict], None]:
    def mutate(state: dict) -> None:
        state[key] = make(state.get(key))

    return mutate


def _json(obj) -> str:
    import json

    return json.dumps(obj)


def _auto_map(folder: Path, file: str, module: str, cls: str, auto: str) -> None:
    """Add `auto_map` naming `module`.py (which would write RAN) to the JSON file `file`."""
    import json

    config = json.loads((folder / file).read_text()) if (folder / file).exists() else {}
    config["auto_map"] = {auto: [f"{module}.{cls}", None] if auto == "AutoTokenizer" else f"{module}.{cls}"}
    (folder / file).write_text(json.dumps(config))
    (folder / f"{module}.py").write_text(_CODE_THAT_MUST_NOT_RUN)


def _hf(edit: Callable[[Path], None]) -> Callable[[Path], Path]:
    """A builder: a tiny Hugging Face ViT-GPT2 folder, then `edit(folder)`."""

    def build(folder: Path) -> Path:
        edit(_copy_of("hf", folder))
        return folder

    return build


def _edit_json(file: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        import json

        config = json.loads((folder / file).read_text())
        change(config)
        (folder / file).write_text(json.dumps(config))

    return edit


def _edit_weights(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        state = load_file(str(folder / "model.safetensors"))
        change(state)
        save_file(state, str(folder / "model.safetensors"))

    return edit


def _sparse_file(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)  # a hole: no disk used

    return make


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _zeros(shape, dtype=None):
    import torch

    return torch.zeros(shape, dtype=dtype or torch.float32)


def _poison(value: float) -> Callable:
    def make(t):
        t = t.clone()
        t.view(-1)[t.numel() // 2] = value
        return t

    return make


def _cast(dtype_name: str) -> Callable:
    import torch

    dtype = getattr(torch, dtype_name)
    return lambda t: t.to(dtype) if dtype_name != "sparse" else t.to_sparse()


def _set_decoder(key: str, value) -> Callable[[dict], None]:
    return lambda c: c["decoder"].__setitem__(key, value)


def _set_encoder(key: str, value) -> Callable[[dict], None]:
    return lambda c: c["encoder"].__setitem__(key, value)


def _put(key: str, value) -> Callable[[dict], None]:
    return lambda c: c.__setitem__(key, value)


def _remove(file: str) -> Callable[[Path], None]:
    return lambda folder: (folder / file).unlink()


def _index_escaping(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(_json({"weight_map": {"a": "../../etc/passwd"}}))


def _word_tokenizer_without_end(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    path = _seed(folder)
    for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        (folder / name).unlink()
    tok = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok).backend_tokenizer.save(str(folder / "tokenizer.json"))
    return path


_NEEDS_TOKENIZER_JSON = "tokenizer.json"
MODEL_CASES: list[ModelCase] = [
    # Paths that are not model files.
    ModelCase(
        "checkpoint_fifo",
        "captioner.pt is a FIFO: refused from its metadata, never opened",
        lambda f: (_fifo(f / "captioner.pt"), f / "captioner.pt")[1],
        "FIFO",
    ),
    ModelCase("dev_zero", "--model /dev/zero: a device, not 'No such file'", lambda f: Path("/dev/zero"), "character device"),
    ModelCase(
        "checkpoint_link_to_dev_zero",
        "captioner.pt is a symlink to /dev/zero",
        lambda f: (os.symlink("/dev/zero", f / "captioner.pt"), f / "captioner.pt")[1],
        "character device",
    ),
    ModelCase(
        "checkpoint_is_folder",
        "a folder whose captioner.pt is itself a folder",
        lambda f: ((f / "captioner.pt").mkdir(), f)[1],
        "a folder",
    ),
    ModelCase(
        "checkpoint_over_cap",
        "a 9 GB captioner.pt (a sparse file): over the size cap, refused unread",
        lambda f: (_sparse_file(9_000_000_000)(f / "captioner.pt"), f / "captioner.pt")[1],
        "too large",
    ),
    # config.json beside the weights.
    ModelCase("config_fifo", "config.json is a FIFO", _seed_with("config.json", special=_fifo), "FIFO"),
    ModelCase(
        "config_link_to_dev_zero",
        "config.json is a symlink to /dev/zero",
        _seed_with("config.json", special=_symlink_to("/dev/zero")),
        "character device",
    ),
    ModelCase(
        "config_link_loop",
        "config.json is a symlink to itself",
        _seed_with("config.json", special=_symlink_to("config.json")),
        "could not be read",
    ),
    ModelCase("config_too_large", "a 2 MB config.json", _seed_with("config.json", " " * 2_000_000 + "{}"), "too large"),
    ModelCase(
        "config_nested_100000",
        "config.json nested 100,000 levels deep",
        _seed_with("config.json", _nested(100_000)),
        "nested too deeply",
    ),
    ModelCase(
        "config_nested_40",
        "config.json nested 40 levels deep",
        _seed_with("config.json", '{"a": ' + _nested(39) + "}"),
        "nested too deeply",
    ),
    ModelCase("config_nan", "config.json with a bare NaN", _seed_with("config.json", '{"num_heads": NaN}'), "not valid JSON"),
    ModelCase(
        "config_not_object", "config.json holding a list", _seed_with("config.json", "[1, 2]"), "does not hold a JSON object"
    ),
    ModelCase(
        "config_depth_10000",
        "config.json says depth 10000",
        _seed_with("config.json", _json({"depth": 10000})),
        "depth must be a whole number from 1 to 256",
    ),
    ModelCase(
        "config_depth_disagrees",
        "config.json says depth 3, the weights hold 2 layers",
        _seed_with("config.json", _json({"depth": 3})),
        "depth is 3, but the weights hold 2",
    ),
    ModelCase(
        "config_seq_len_disagrees",
        "config.json says seq_len 1024, the weights hold 40 positions",
        _seed_with("config.json", _json({"seq_len": 1024})),
        "seq_len is 1024, but the weights hold 40",
    ),
    *[
        ModelCase(
            f"config_heads_{label}",
            f"config.json num_heads {value!r}",
            _seed_with("config.json", _json({"num_heads": value})),
            "num_heads must be a whole number",
        )
        for label, value in [("string", "4"), ("float", 4.0), ("bool", True), ("zero", 0), ("negative", -4), ("list", [4])]
    ],
    ModelCase(
        "config_heads_not_dividing",
        "config.json num_heads 5 for a width of 32",
        _seed_with("config.json", _json({"num_heads": 5})),
        "num_heads (5) must divide the width the weights hold (32)",
    ),
    ModelCase(
        "config_mean_short",
        "image_mean of one number",
        _seed_with("config.json", _json({"image_mean": [0.5]})),
        "image_mean must be a list of 3 numbers",
    ),
    ModelCase(
        "config_std_zero", "image_std of zeros", _seed_with("config.json", _json({"image_std": [0, 0, 0]})), "image_std must be"
    ),
    ModelCase(
        "config_dropout_string",
        "a dropout given as a string",
        _seed_with("config.json", _json({"attention_dropout": "0.1"})),
        "attention_dropout must be a number",
    ),
    ModelCase(
        "config_image_size_huge",
        "image_size 15000",
        _seed_with("config.json", _json({"image_size": 15000})),
        "image_size must be a whole number from 1 to 4096",
    ),
    ModelCase(
        "generation_config_type",
        'generation_config.json num_beams "4"',
        _seed_with("generation_config.json", _json({"num_beams": "4"})),
        "generation_config.json: num_beams must be",
    ),
    ModelCase(
        "generation_config_temperature_zero",
        "generation_config.json sampling at temperature 0",
        _seed_with("generation_config.json", _json({"do_sample": True, "temperature": 0})),
        "temperature must be",
    ),
    # Tokenizers.
    ModelCase(
        "tokenizer_json_fifo",
        "tokenizer.json is a FIFO",
        _seed_with(_NEEDS_TOKENIZER_JSON, special=_fifo, layout="tokenizer.json"),
        "FIFO",
    ),
    ModelCase(
        "tokenizer_json_garbage",
        "tokenizer.json is not JSON",
        _seed_with(_NEEDS_TOKENIZER_JSON, "{not json", layout="tokenizer.json"),
        "could not be read",
    ),
    ModelCase(
        "tokenizer_auto_map",
        "tokenizer_config.json names tokenization_evil.py in auto_map",
        lambda f: (
            _seed(f),
            _auto_map(f, "tokenizer_config.json", "tokenization_evil", "EvilTokenizer", "AutoTokenizer"),
            f / "captioner.pt",
        )[2],
        "tokenization_evil.py",
    ),
    ModelCase(
        "tokenizer_without_end_token",
        "a tokenizer with no <|endoftext|>, eos or bos token",
        _word_tokenizer_without_end,
        "no end-of-text token",
    ),
    # Weights.
    ModelCase(
        "key_h_99999",
        "one extra key transformer.h.99999.x: not 100,000 layers",
        _state(_set("transformer.h.99999.x", lambda _: _zeros(3))),
        "decoder layer 99999 has weights but layers 2 to 99998 have none",
    ),
    ModelCase(
        "key_blocks_50",
        "one extra key blocks.50.x",
        _state(_set("blocks.50.x", lambda _: _zeros(3))),
        "encoder layer 50 has weights",
    ),
    *[
        ModelCase(
            f"weights_{kind}", f"a weight of {kind} values", _state(_set("transformer.h.0.ln_1.weight", _cast(kind))), message
        )
        for kind, message in [
            ("int32", "int32 values"),
            ("bool", "bool values"),
            ("complex64", "complex64 values"),
            ("int8", "int8 values"),
            ("sparse", "must be dense"),
        ]
    ],
    ModelCase(
        "weights_nan",
        "a NaN in a decoder weight",
        _state(_set("transformer.h.1.mlp.c_fc.weight", _poison(float("nan")))),
        "NaN or infinite values, first in transformer.h.1.mlp.c_fc.weight",
    ),
    ModelCase(
        "weights_inf",
        "an infinity in an encoder weight",
        _state(_set("blocks.0.attn.qkv.weight", _poison(float("inf")))),
        "NaN or infinite values, first in blocks.0.attn.qkv.weight",
    ),
    ModelCase(
        "wte_1d",
        "transformer.wte.weight of one dimension",
        _state(_set("transformer.wte.weight", lambda t: t[0])),
        "Shapes fit no VisionGPT2 config",
    ),
    ModelCase(
        "pos_embed_4d",
        "pos_embed of four dimensions",
        _state(_set("pos_embed", lambda t: t[None])),
        "Shapes fit no VisionGPT2 config",
    ),
    ModelCase(
        "mask_wrong_size",
        "an attn.mask buffer of the wrong size",
        _state(_set("transformer.h.0.attn.mask", lambda _: _zeros((1, 1, 8, 8)))),
        "wrong shapes: transformer.h.0.attn.mask",
    ),
    # Hugging Face folders.
    ModelCase(
        "hf_n_layer_10000",
        "config.json decoder.n_layer 10000, the weights hold 2",
        _hf(_edit_json("config.json", _set_decoder("n_layer", 200))),
        "decoder.n_layer is 200, but the weights hold 2 decoder layers",
    ),
    ModelCase(
        "hf_n_layer_huge",
        "config.json decoder.n_layer 100000",
        _hf(_edit_json("config.json", _set_decoder("n_layer", 100_000))),
        "decoder.n_layer must be a whole number from 1 to 256",
    ),
    ModelCase(
        "hf_n_layer_string",
        'config.json decoder.n_layer "2"',
        _hf(_edit_json("config.json", _set_decoder("n_layer", "2"))),
        "decoder.n_layer must be a whole number",
    ),
    ModelCase(
        "hf_encoder_layers",
        "config.json encoder.num_hidden_layers 200",
        _hf(_edit_json("config.json", _set_encoder("num_hidden_layers", 200))),
        "encoder.num_hidden_layers is 200",
    ),
    ModelCase(
        "hf_n_embd_wrong",
        "config.json decoder.n_embd 64, the weights are 32 wide",
        _hf(_edit_json("config.json", _set_decoder("n_embd", 64))),
        "but the weights hold (62, 32)",
    ),
    ModelCase(
        "hf_decoder_bert",
        "a BERT decoder",
        _hf(_edit_json("config.json", _set_decoder("model_type", "bert"))),
        "only GPT-2 decoders",
    ),
    ModelCase(
        "hf_decoder_not_mapping", "decoder is a number", _hf(_edit_json("config.json", _put("decoder", 5))), "only GPT-2 decoders"
    ),
    ModelCase(
        "hf_extra_layer_key",
        "one extra tensor decoder.transformer.h.99999.x",
        _hf(_edit_weights(_set("decoder.transformer.h.99999.x", lambda _: _zeros(3)))),
        "layer 99999 has weights",
    ),
    ModelCase(
        "hf_weights_nan",
        "a NaN in a decoder weight",
        _hf(_edit_weights(_set("decoder.transformer.h.0.mlp.c_fc.weight", _poison(float("nan"))))),
        "NaN or infinite values",
    ),
    ModelCase(
        "hf_preprocessor_size_15000",
        "preprocessor_config.json size 15000 x 15000",
        _hf(_edit_json("preprocessor_config.json", _put("size", {"height": 15000, "width": 15000}))),
        "size.height must be",
    ),
    ModelCase(
        "hf_preprocessor_size_int",
        "preprocessor_config.json size 15000",
        _hf(_edit_json("preprocessor_config.json", _put("size", 15000))),
        "size must be",
    ),
    ModelCase(
        "hf_preprocessor_size_mismatch",
        "preprocessor_config.json size 448 for a 32-pixel encoder",
        _hf(_edit_json("preprocessor_config.json", _put("size", {"height": 448, "width": 448}))),
        "size.height is 448",
    ),
    ModelCase(
        "hf_preprocessor_no_resize",
        "preprocessor_config.json do_resize false",
        _hf(_edit_json("preprocessor_config.json", _put("do_resize", False))),
        "do_resize is false",
    ),
    ModelCase(
        "hf_preprocessor_fifo",
        "preprocessor_config.json is a FIFO",
        _hf(lambda f: ((f / "preprocessor_config.json").unlink(), _fifo(f / "preprocessor_config.json"))),
        "FIFO",
    ),
    ModelCase(
        "hf_preprocessor_missing",
        "no preprocessor_config.json",
        _hf(_remove("preprocessor_config.json")),
        "no preprocessor_config.json",
    ),
    ModelCase(
        "hf_preprocessor_auto_map",
        "preprocessor_config.json names image_processing_evil.py",
        _hf(lambda f: _auto_map(f, "preprocessor_config.json", "image_processing_evil", "EvilProcessor", "AutoImageProcessor")),
        "image_processing_evil.py",
    ),
    ModelCase(
        "hf_config_auto_map",
        "config.json names modeling_evil.py",
        _hf(lambda f: _auto_map(f, "config.json", "modeling_evil", "EvilModel", "AutoModel")),
        "modeling_evil.py",
    ),
    ModelCase(
        "hf_generation_config_bad",
        "generation_config.json num_beams -1",
        _hf(_edit_json("generation_config.json", _put("num_beams", -1))),
        "generation_config.json: num_beams must be",
    ),
    ModelCase("hf_weights_missing", "no weights at all", _hf(_remove("model.safetensors")), "has no weights"),
    ModelCase(
        "hf_index_escapes", "a weights index pointing outside the folder", _hf(_index_escaping), "shard files in the same folder"
    ),
]
assert len({c.name for c in MODEL_CASES}) == len(MODEL_CASES), "model case names must be unique"


def build_model_corpus(directory: str | Path) -> list[tuple[ModelCase, Path]]:
    """Write every model case in its own folder under ``directory``; return (case, spec to load)."""
    built = []
    for case in MODEL_CASES:
        folder = Path(directory) / case.name
        folder.mkdir(parents=True, exist_ok=True)
        built.append((case, case.build(folder)))
    return built


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.corpus OUT_DIR", file=sys.stderr)
        return 2
    for case in build_corpus(argv[0], heavy=True, paths=True):
        outcome = f"error: {case.message_contains}" if case.expected == "error" else "ok"
        print(f"{case.kind:7} {str(case.path):45} {outcome:28} {case.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
