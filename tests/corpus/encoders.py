"""Image files built by hand or with PIL: halves in two colours, headers that lie, animations, TIFF tags."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.corpus.case import BLACK, BLUE, GREEN, RED, WHITE, Pixel


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def halves(size: tuple[int, int], first, second, mode: str = "RGB", vertical: bool = False) -> Image.Image:
    """Left/right halves (or top/bottom with ``vertical``) in two colours."""
    w, h = size
    im = Image.new(mode, size, first)
    box = (0, h // 2, w, h) if vertical else (w // 2, 0, w, h)
    im.paste(second, box)
    return im


def left_right(size, left, right) -> tuple[Pixel, ...]:
    """Expected colours near the centre of the left and right halves."""
    w, h = size
    return (((w // 4, h // 2), left), ((3 * w // 4, h // 2), right))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1024))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_bad_crc() -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), RED), "PNG"))
    data[29] ^= 0xFF  # first byte of the IHDR CRC (8 signature + 8 length/type + 13 body)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline start-of-frame: FFC0 len(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_with_app1(payload: bytes) -> bytes:
    data = encode(halves((32, 16), RED, BLUE), "JPEG", quality=95)
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def exif_rotated_jpeg(orientation: int) -> bytes:
    """Upright: 60 x 40, red top half, blue bottom half; stored so that ``orientation`` restores it."""
    upright = halves((60, 40), RED, BLUE, vertical=True)
    undo = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}
    stored = upright.transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def gif_frame(colour_index: int, width: int, height: int) -> bytes:
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


def many_frame_gif(n_frames: int = 3000, size: int = 4) -> bytes:
    """First frame red, then ``n_frames - 1`` blue frames."""
    header = b"GIF89a" + struct.pack("<HH", size, size) + b"\x80\x00\x00" + bytes(RED) + bytes(BLUE)
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return header + loop + gif_frame(0, size, size) + gif_frame(1, size, size) * (n_frames - 1) + b"\x3b"


def animated(fmt: str, **params) -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, BLUE, GREEN)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


def rgba_png() -> bytes:
    """Three vertical bands: opaque red, 50% black, fully transparent blue."""
    im = Image.new("RGBA", (30, 10), (0, 0, 255, 0))
    im.paste((255, 0, 0, 255), (0, 0, 10, 10))
    im.paste((0, 0, 0, 128), (10, 0, 20, 10))
    return encode(im, "PNG")


def palette_transparent(fmt: str) -> bytes:
    im = halves((20, 10), 0, 1, mode="P")
    im.putpalette(list(RED) + list(BLUE))
    return encode(im, fmt, transparency=1)


def gradient16_png() -> bytes:
    values = np.tile(np.arange(256, dtype=np.uint32) * 257, (4, 1)).astype(np.uint16)
    return encode(Image.fromarray(values), "PNG")  # mode I;16


def gradient_tiff(dtype, scale: float) -> bytes:
    values = np.tile(np.arange(256, dtype=np.float64) * scale, (4, 1)).astype(dtype)
    return encode(Image.fromarray(values), "TIFF")  # mode I (int32) or F (float32)


GRADIENT_PIXELS = (((0, 1), BLACK), ((128, 1), (128, 128, 128)), ((255, 1), WHITE))


def svg(prolog: bool) -> bytes:
    drawing = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    return (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- drawing -->\n' + drawing) if prolog else drawing


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def eps() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"


def heic() -> bytes:
    return struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic" + bytes(200)


def avif() -> bytes:
    return struct.pack(">I", 24) + b"ftypavif" + struct.pack(">I", 0) + b"avifmif1" + bytes(200)


def small_png(colour=RED) -> bytes:
    return encode(Image.new("RGB", (4, 4), colour), "PNG")


def noise_image(w: int, h: int) -> Image.Image:
    """Incompressible pixels, so that cutting the file in half cuts the pixel data."""
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8))


def exif_bytes(tags: dict[int, int]) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return exif.tobytes()


def tiff(entries: list[tuple[int, int, int, int | str]], payload: bytes = b"") -> bytes:
    """A little-endian TIFF with one IFD of (tag, type 3=SHORT / 4=LONG, count, value), written by hand so
    that its tags can claim anything; the value "DATA" is the offset of `payload`, stored after the IFD."""
    data_offset = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in sorted(entries):
        value = data_offset if value == "DATA" else value
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + payload


def tiff_tile_bomb(side: int = 46340) -> bytes:
    """A 16 x 16 deflate TIFF whose tile tags claim `side` x `side` tiles: libtiff would allocate one (2 GB)."""
    payload = zlib.compress(bytes(16 * 16))
    return tiff(
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


def big_grey_tiff(dtype) -> bytes:
    """7000 x 7000 (49 megapixels) float32 or uint16 grey, deflated to ~0.3 MB: a dot every 100 pixels."""
    values = np.zeros((7000, 7000), dtype)
    values[::100, ::100] = 1 if dtype == np.float32 else 65535
    return encode(Image.fromarray(values), "TIFF", compression="tiff_adobe_deflate")
