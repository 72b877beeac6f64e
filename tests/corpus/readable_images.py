"""Image cases that must load: ordinary files, other modes, orientation and metadata, animations."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.corpus.case import BLACK, BLUE, GREEN, RED, WHITE, Case, ok_case
from tests.corpus.encoders import (
    GRADIENT_PIXELS,
    animated,
    encode,
    exif_bytes,
    exif_rotated_jpeg,
    gradient16_png,
    gradient_tiff,
    halves,
    jpeg_with_app1,
    left_right,
    many_frame_gif,
    palette_transparent,
    rgba_png,
)


def red_blue_case(name: str, filename: str, description: str, fmt: str, tolerance: int = 40, **params) -> Case:
    """A 40 x 20 image of red | blue halves saved as `fmt` (with `params`): it must load at its size and colours."""

    def make() -> bytes:
        return encode(halves((40, 20), RED, BLUE), fmt, **params)

    return ok_case(name, filename, description, make, (40, 20), left_right((40, 20), RED, BLUE), tolerance=tolerance)


READABLE_IMAGE_CASES: list[Case] = [
    # Ordinary files, to prove the rules don't refuse good input.
    red_blue_case("rgb_png", "plain.png", "Plain RGB PNG, red | blue halves", "PNG", tolerance=0),
    red_blue_case("rgb_jpeg", "plain.jpg", "Plain RGB JPEG, red | blue halves", "JPEG", quality=95),
    red_blue_case("progressive_jpeg", "progressive.jpg", "Progressive JPEG", "JPEG", progressive=True),
    red_blue_case("png_named_jpg", "actually_png.jpg", "A PNG with a .jpg name: content decides, not the name", "PNG"),
    red_blue_case("bmp", "plain.bmp", "Windows BMP", "BMP", tolerance=0),
    red_blue_case("tiff_lzw", "plain.tiff", "LZW-compressed RGB TIFF", "TIFF", compression="tiff_lzw", tolerance=0),
    red_blue_case("webp", "plain.webp", "Lossy WebP", "WEBP", quality=95),
    ok_case(
        "one_pixel",
        "one_pixel.png",
        "A 1 x 1 image is tiny but valid",
        lambda: encode(Image.new("RGB", (1, 1), GREEN), "PNG"),
        (1, 1),
        [((0, 0), GREEN)],
        tolerance=0,
    ),
    ok_case(
        "very_wide",
        "wide.png",
        "10000 x 20 panorama strip: extreme aspect ratios are allowed",
        lambda: encode(halves((10000, 20), RED, BLUE), "PNG"),
        (10000, 20),
        left_right((10000, 20), RED, BLUE),
    ),
    ok_case(
        "very_tall",
        "tall.jpg",
        "20 x 10000 strip as JPEG",
        lambda: encode(halves((20, 10000), RED, BLUE, vertical=True), "JPEG"),
        (20, 10000),
        [((10, 100), RED), ((10, 9900), BLUE)],
    ),
    # Modes other than RGB.
    ok_case(
        "rgba_png",
        "rgba.png",
        "RGBA bands: opaque red, 50% black, transparent blue (must turn white)",
        rgba_png,
        (30, 10),
        [((5, 5), RED), ((15, 5), (127, 127, 127)), ((25, 5), WHITE)],
        tolerance=2,
    ),
    ok_case(
        "rgba_webp",
        "rgba.webp",
        "Lossless WebP with alpha: transparent half must turn white",
        lambda: encode(halves((20, 10), (255, 0, 0, 255), (0, 0, 255, 0), mode="RGBA"), "WEBP", lossless=True),
        (20, 10),
        left_right((20, 10), RED, WHITE),
        tolerance=2,
    ),
    ok_case(
        "la_png",
        "gray_alpha.png",
        "Grey + alpha (LA): opaque black | transparent black",
        lambda: encode(halves((20, 10), (0, 255), (0, 0), mode="LA"), "PNG"),
        (20, 10),
        left_right((20, 10), BLACK, WHITE),
        tolerance=0,
    ),
    ok_case(
        "palette_transparent_png",
        "palette_alpha.png",
        "Palette PNG whose second colour is transparent",
        lambda: palette_transparent("PNG"),
        (20, 10),
        left_right((20, 10), RED, WHITE),
        tolerance=0,
    ),
    ok_case(
        "palette_transparent_gif",
        "transparent.gif",
        "GIF with a transparent colour",
        lambda: palette_transparent("GIF"),
        (20, 10),
        left_right((20, 10), RED, WHITE),
        tolerance=0,
    ),
    ok_case(
        "palette_png",
        "palette.png",
        "Palette PNG without transparency",
        lambda: encode(halves((20, 10), RED, BLUE).quantize(2), "PNG"),
        (20, 10),
        left_right((20, 10), RED, BLUE),
    ),
    ok_case(
        "bilevel_png",
        "bilevel.png",
        "1-bit black | white PNG",
        lambda: encode(halves((20, 10), 0, 255, mode="1"), "PNG"),
        (20, 10),
        left_right((20, 10), BLACK, WHITE),
        tolerance=0,
    ),
    ok_case(
        "gray_jpeg",
        "gray.jpg",
        "Greyscale (L) JPEG",
        lambda: encode(Image.new("L", (16, 16), 100), "JPEG"),
        (16, 16),
        [((8, 8), (100, 100, 100))],
        tolerance=3,
    ),
    ok_case(
        "gray16_png",
        "gray16.png",
        "16-bit grey gradient (I;16): must be scaled to 8 bits, not clipped to white",
        gradient16_png,
        (256, 4),
        GRADIENT_PIXELS,
        tolerance=2,
    ),
    ok_case(
        "int32_tiff",
        "int32.tiff",
        "32-bit integer TIFF (mode I) holding 16-bit values 0..65535",
        lambda: gradient_tiff(np.int32, 257),
        (256, 4),
        GRADIENT_PIXELS,
        tolerance=2,
    ),
    ok_case(
        "float_tiff",
        "float.tiff",
        "32-bit float TIFF (mode F) holding 0..1",
        lambda: gradient_tiff(np.float32, 1 / 255),
        (256, 4),
        GRADIENT_PIXELS,
        tolerance=2,
    ),
    ok_case(
        "cmyk_jpeg",
        "cmyk.jpg",
        "CMYK JPEG (Adobe, inverted): colours must come out right, not inverted",
        lambda: encode(halves((20, 10), (0, 255, 255, 0), (255, 255, 0, 0), mode="CMYK"), "JPEG", quality=95),
        (20, 10),
        left_right((20, 10), RED, BLUE),
    ),
    ok_case(
        "cmyk_tiff",
        "cmyk.tiff",
        "CMYK TIFF",
        lambda: encode(halves((20, 10), (0, 255, 255, 0), (255, 255, 0, 0), mode="CMYK"), "TIFF"),
        (20, 10),
        left_right((20, 10), RED, BLUE),
        tolerance=2,
    ),
    # Orientation and metadata.
    ok_case(
        "exif_rotate_6",
        "rotated6.jpg",
        "Stored sideways with EXIF orientation 6: must load upright (60 x 40, red top, blue bottom)",
        lambda: exif_rotated_jpeg(6),
        (60, 40),
        [((30, 8), RED), ((30, 32), BLUE)],
    ),
    ok_case(
        "exif_rotate_8",
        "rotated8.jpg",
        "Stored sideways with EXIF orientation 8: must load upright",
        lambda: exif_rotated_jpeg(8),
        (60, 40),
        [((30, 8), RED), ((30, 32), BLUE)],
    ),
    ok_case(
        "exif_rotate_3",
        "rotated3.jpg",
        "Stored upside down with EXIF orientation 3: must load upright",
        lambda: exif_rotated_jpeg(3),
        (60, 40),
        [((30, 8), RED), ((30, 32), BLUE)],
    ),
    ok_case(
        "exif_corrupt",
        "bad_exif.jpg",
        "JPEG with a garbage EXIF block: the picture still loads",
        lambda: jpeg_with_app1(b"Exif\x00\x00MM\x00*\x00\x00\xff\xf0" + bytes(range(256)) * 2),
        (32, 16),
        left_right((32, 16), RED, BLUE),
    ),
    ok_case(
        "exif_bad_orientation",
        "orientation99.jpg",
        "EXIF orientation 99 (invalid): loaded as stored",
        lambda: encode(halves((32, 16), RED, BLUE), "JPEG", exif=exif_bytes({0x0112: 99})),
        (32, 16),
        left_right((32, 16), RED, BLUE),
    ),
    # Animation: only the first frame, and never walk all frames.
    ok_case(
        "gif_3000_frames",
        "many_frames.gif",
        "GIF with 3000 frames of 4 x 4: first frame (red) only, quickly",
        many_frame_gif,
        (4, 4),
        [((1, 1), RED)],
        tolerance=0,
        max_seconds=1.0,
    ),
    ok_case(
        "animated_webp",
        "animated.webp",
        "Animated WebP red, blue, green: first frame (red)",
        lambda: animated("WEBP", lossless=True),
        (16, 16),
        [((8, 8), RED)],
        tolerance=2,
    ),
    ok_case(
        "apng",
        "animated.png",
        "Animated PNG red, blue, green: first frame (red)",
        lambda: animated("PNG"),
        (16, 16),
        [((8, 8), RED)],
        tolerance=0,
    ),
]
