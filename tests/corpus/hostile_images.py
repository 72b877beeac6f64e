"""Image cases that must be refused (or survive): not images, damaged files, decompression bombs, odd paths."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.corpus.case import BLACK, BLUE, RED, WHITE, Case, error_case, ok_case
from tests.corpus.encoders import (
    avif,
    big_grey_tiff,
    encode,
    eps,
    heic,
    jpeg_claiming,
    left_right,
    noise_image,
    pdf,
    png_bad_crc,
    png_claiming,
    small_png,
    svg,
    tiff_tile_bomb,
)
from tests.corpus.special_paths import make_fifo, make_folder, make_symlink_to
from tests.corpus.zips import zip_of

HOSTILE_IMAGE_CASES: list[Case] = [
    # Not images at all.
    error_case("empty", "empty.jpg", "Zero-byte file", lambda: b"", "empty"),
    error_case(
        "text_as_jpg",
        "notes.jpg",
        "A text file with a .jpg name",
        lambda: b"Shopping list:\n- milk\n- eggs\n" * 20,
        "not an image",
    ),
    error_case(
        "html_as_png",
        "page.png",
        "An HTML page saved as .png",
        lambda: b"<!DOCTYPE html><html><body><img src='cat.png'></body></html>",
        "not an image",
    ),
    error_case(
        "random_bytes",
        "noise.png",
        "4 KB of random bytes",
        lambda: np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "not an image",
    ),
    error_case("svg_as_png", "drawing.png", "SVG named .png", lambda: svg(prolog=False), "SVG"),
    error_case(
        "svg_with_prolog", "drawing.jpg", "SVG with a BOM, XML prolog and comment, named .jpg", lambda: svg(prolog=True), "SVG"
    ),
    error_case("pdf_as_jpg", "scan.jpg", "PDF named .jpg (must not reach any PDF/Ghostscript code)", pdf, "PDF"),
    error_case("eps_as_jpg", "figure.jpg", "EPS named .jpg (Pillow would run Ghostscript)", eps, "PostScript"),
    error_case("heic_as_jpg", "IMG_0001.jpg", "iPhone HEIC (ftypheic header) named .jpg", heic, "HEIC"),
    error_case("avif_as_png", "photo.png", "AVIF (ftypavif header) named .png", avif, "AVIF"),
    error_case(
        "ppm_as_png",
        "netpbm.png",
        "A valid PPM image: Pillow reads it, but only the listed formats are tried",
        lambda: encode(Image.new("RGB", (4, 4), RED), "PPM"),
        "not an image",
    ),
    error_case("zip_as_png", "archive.png", "A ZIP archive named .png", lambda: zip_of({"a.png": small_png()}), "ZIP"),
    # Damaged images.
    error_case(
        "truncated_jpeg",
        "truncated.jpg",
        "JPEG cut to half its length",
        lambda: (d := encode(noise_image(64, 64), "JPEG"))[: len(d) // 2],
        "truncated or corrupt",
    ),
    error_case(
        "truncated_png",
        "truncated.png",
        "PNG cut off inside its pixel data",
        lambda: (d := encode(noise_image(64, 64), "PNG"))[: len(d) // 2],
        "truncated or corrupt",
    ),
    error_case("png_bad_crc", "bad_crc.png", "PNG whose header checksum is wrong", png_bad_crc, "truncated or corrupt"),
    error_case(
        "png_zero_size", "zero.png", "PNG header claiming 0 x 0 pixels", lambda: png_claiming(0, 0), "truncated or corrupt"
    ),
    error_case("gif_header_only", "header.gif", "Nothing but the GIF signature", lambda: b"GIF89a", "truncated or corrupt"),
    error_case(
        "jpeg_markers_only",
        "markers.jpg",
        "JPEG start and end markers with nothing between",
        lambda: b"\xff\xd8\xff\xd9",
        "truncated or corrupt",
    ),
    # Decompression bombs: tiny files whose headers claim huge images.
    error_case(
        "png_bomb_40000",
        "bomb40000.png",
        "600-byte PNG claiming 40000 x 40000 pixels",
        lambda: png_claiming(40000, 40000),
        "too large",
        max_seconds=1.0,
    ),
    error_case(
        "png_8000",
        "big8000.png",
        "PNG claiming 8000 x 8000 (64 MP: over our limit, under Pillow's)",
        lambda: png_claiming(8000, 8000),
        "8000 x 8000",
        max_seconds=1.0,
    ),
    error_case(
        "jpeg_sof_60000",
        "bomb60000.jpg",
        "JPEG whose frame header claims 60000 x 60000 pixels",
        lambda: jpeg_claiming(60000, 60000),
        "too large",
        max_seconds=1.0,
    ),
    error_case(
        "tiff_tile_bomb",
        "tiles.tif",
        "146-byte 16 x 16 TIFF whose tile tags claim 46340 x 46340 tiles",
        tiff_tile_bomb,
        "tiles claim 46340 x 46340",
        max_seconds=1.0,
    ),
    ok_case(
        "tiff_float_49mp",
        "float49mp.tif",
        "0.3 MB float TIFF of 7000 x 7000 (49 MP): scaled without float64 copies",
        lambda: big_grey_tiff(np.float32),
        (7000, 7000),
        [((0, 0), WHITE), ((50, 50), BLACK)],
        tolerance=0,
        heavy=True,
    ),
    ok_case(
        "tiff_uint16_49mp",
        "uint16_49mp.tif",
        "0.2 MB 16-bit TIFF of 7000 x 7000 (49 MP)",
        lambda: big_grey_tiff(np.uint16),
        (7000, 7000),
        [((0, 0), WHITE), ((50, 50), BLACK)],
        tolerance=0,
        heavy=True,
    ),
    # Paths that are not regular files: refused from their metadata, never opened for reading.
    error_case(
        "fifo",
        "pipe.png",
        "A FIFO (named pipe) with an image name: refused at once, the next files still load",
        lambda: b"",
        "FIFO",
        special=make_fifo,
        max_seconds=1.0,
    ),
    error_case(
        "link_to_dev_zero",
        "dev_zero.png",
        "A symlink to /dev/zero: a device that never ends",
        lambda: b"",
        "character device",
        special=make_symlink_to("/dev/zero"),
        max_seconds=1.0,
    ),
    error_case("folder_named_png", "folder.png", "A folder with an image name", lambda: b"", "a folder", special=make_folder),
    error_case(
        "broken_link",
        "gone.png",
        "A symlink to a file that does not exist",
        lambda: b"",
        "No such file",
        special=make_symlink_to("does-not-exist.png"),
    ),
    ok_case(
        "link_to_image",
        "link.png",
        "A symlink to a plain PNG: followed, and the target checked",
        lambda: b"",
        (40, 20),
        left_right((40, 20), RED, BLUE),
        tolerance=0,
        special=make_symlink_to("plain.png"),
    ),
]
