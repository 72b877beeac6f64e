"""The case records: a file (image or archive) or a model, and the outcome loading it must have."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from PIL import Image


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


def ok_case(name, filename, description, make, size=None, pixels=(), **kw) -> Case:
    """An image that must load, with its size and some pixels' colours when given."""
    return Case(name, filename, description, "ok", make, expect_size=size, expect_pixels=tuple(pixels), **kw)


def error_case(name, filename, description, make, contains, **kw) -> Case:
    """An image that must be refused with a message containing ``contains``."""
    return Case(name, filename, description, "error", make, message_contains=contains, **kw)


def archive_case(name, filename, description, make, *, images=None, skipped=None, error=None) -> Case:
    """A ZIP for ``read_image_archive``: how many images and skipped entries come back, or the error."""
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


@dataclass(frozen=True)
class ModelCase:
    """A model file or folder a user may hand to ``load_captioner``, and the message it must get."""

    name: str
    description: str
    build: Callable[[Path], Path] = field(repr=False, compare=False)  # empty folder -> the spec to load
    message_contains: str
