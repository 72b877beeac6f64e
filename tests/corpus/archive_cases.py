"""ZIP archive cases for ``read_image_archive``: good archives, junk entries, bombs, liars, damaged files."""

from __future__ import annotations

from PIL import Image

from tests.corpus.case import BLUE, Case, archive_case
from tests.corpus.encoders import encode, small_png
from tests.corpus.zips import raw_zip, stored_entry, zip_bomb, zip_bomb_many, zip_lying_size, zip_of


ARCHIVE_CASES: list[Case] = [
    archive_case(
        "zip_three_images",
        "three.zip",
        "Three images (PNG, JPEG, GIF in a folder)",
        lambda: zip_of(
            {
                "a.png": small_png(),
                "b.jpg": encode(Image.new("RGB", (8, 8), BLUE), "JPEG"),
                "sub/c.gif": encode(Image.new("P", (8, 8), 0), "GIF"),
            }
        ),
        images=3,
        skipped=0,
    ),
    archive_case(
        "zip_with_junk",
        "junk.zip",
        "One image among a folder, __MACOSX, .DS_Store and a readme",
        lambda: zip_of(
            {
                "photos/": b"",
                "photos/a.png": small_png(),
                "__MACOSX/photos/._a.png": b"\0\5\26\7",
                ".DS_Store": b"\0\0\0\1Bud1",
                "photos/readme.txt": b"hello",
            }
        ),
        images=1,
        skipped=1,
    ),
    archive_case(
        "zip_path_traversal",
        "traversal.zip",
        "Entries named ../../evil.png and /etc/evil.png: harmless names",
        lambda: raw_zip([stored_entry("../../evil.png", small_png()), stored_entry("/etc/evil.png", small_png())]),
        images=2,
        skipped=0,
    ),
    archive_case(
        "zip_1000_files",
        "thousand.zip",
        "1000 tiny PNGs: over the 200-image limit",
        lambda: raw_zip([stored_entry(f"img{i:04d}.png", small_png()) for i in range(1000)]),
        error="1000 images",
    ),
    archive_case(
        "zip_bomb",
        "bomb.zip",
        "One entry of 500 MiB of zeros in a 0.5 MB file: skipped by its declared size",
        zip_bomb,
        images=0,
        skipped=1,
    ),
    archive_case(
        "zip_bomb_many",
        "bomb_many.zip",
        "Ten 24 MB entries of zeros: 240 MB in total is over the limit",
        zip_bomb_many,
        error="limit",
    ),
    archive_case(
        "zip_lying_size",
        "liar.zip",
        "Entry declaring 1000 bytes that inflates to 10 MiB: never returned",
        zip_lying_size,
        images=0,
        skipped=1,
    ),
    archive_case(
        "zip_encrypted",
        "encrypted.zip",
        "Entry flagged as password-protected",
        lambda: raw_zip([stored_entry("secret.png", small_png(), flags=1), stored_entry("open.png", small_png())]),
        images=1,
        skipped=1,
    ),
    archive_case(
        "zip_bad_crc",
        "bad_crc.zip",
        "Entry whose checksum does not match: damaged, skipped",
        lambda: raw_zip([stored_entry("bad.png", small_png(), crc=1234), stored_entry("good.png", small_png())]),
        images=1,
        skipped=1,
    ),
    archive_case("zip_no_entries", "nothing.zip", "A valid ZIP with no entries", lambda: raw_zip([]), images=0, skipped=0),
    archive_case("zip_not_a_zip", "photo.zip", "A PNG named .zip", small_png, error="not a ZIP"),
    archive_case(
        "zip_truncated",
        "truncated.zip",
        "ZIP cut in half (no central directory)",
        lambda: (d := zip_of({"a.png": small_png(), "b.png": small_png(BLUE)}))[: len(d) // 2],
        error="not a ZIP",
    ),
    archive_case("zip_empty_file", "empty.zip", "Zero-byte upload", lambda: b"", error="empty"),
]
