"""Tests of captioner.images.load_image and captioner.archives.read_image_archive.

Each corpus case (tests/corpus/) gets one test checking its exact outcome;
the API tests below cover the ways of calling the two functions.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from captioner.archives import ArchiveContents, ArchiveError, _read_capped, read_image_archive
from captioner.images import SUPPORTED_FORMATS, ImageLoadError, load_image
from tests.corpus import ARCHIVE_CASES, IMAGE_CASES, Case, build_corpus, build_image_corpus
from tests.corpus.zips import zip_of


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Case]:
    return {case.name: case for case in build_corpus(tmp_path_factory.mktemp("corpus"), paths=True)}


def _timed(case: Case, fn):
    # No wall-clock assertion (the machine is shared): what keeps bombs cheap is checked by the
    # memory-bound tests in test_hostile.py, which measure a child process's peak.
    return fn()


# --- the corpus -------------------------------------------------------------------


@pytest.fixture(scope="module")
def heavy_corpus(tmp_path_factory) -> dict[str, Case]:
    return {case.name: case for case in build_image_corpus(tmp_path_factory.mktemp("heavy"), heavy=True) if case.heavy}


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("name", [pytest.param(c.name, marks=[pytest.mark.slow] if c.heavy else []) for c in IMAGE_CASES])
def test_image_case(request, corpus: dict[str, Case], name: str) -> None:
    case = corpus[name] if name in corpus else request.getfixturevalue("heavy_corpus")[name]
    if case.expected == "ok":
        image = _timed(case, lambda: load_image(case.path))
        assert case.image_problems(image) == [], case.description
    else:
        with pytest.raises(ImageLoadError) as caught:
            _timed(case, lambda: load_image(case.path))
        assert type(caught.value) is ImageLoadError
        assert case.error_problems(str(caught.value)) == [], case.description


@pytest.mark.parametrize("name", [c.name for c in ARCHIVE_CASES])
def test_archive_case(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    if case.expected == "ok":
        result = _timed(case, lambda: read_image_archive(case.data()))
        assert len(result.images) == case.expect_images, result
        assert len(result.skipped) == case.expect_skipped, result.skipped
    else:
        with pytest.raises(ArchiveError) as caught:
            _timed(case, lambda: read_image_archive(case.data()))
        assert case.error_problems(str(caught.value)) == [], case.description


def test_corpus_is_big_enough() -> None:
    assert len(IMAGE_CASES) + len(ARCHIVE_CASES) >= 30
    assert {"ok", "error"} <= {c.expected for c in IMAGE_CASES}


def test_corpus_zip_lying_size_really_inflates(corpus: dict[str, Case]) -> None:
    # The liar must hold more than it declares, or the case proves nothing.
    archive = zipfile.ZipFile(io.BytesIO(corpus["zip_lying_size"].data()))
    (info,) = archive.infolist()
    assert info.file_size == 1000 and info.compress_size > 1000


# --- load_image API -----------------------------------------------------------------


def _png(size=(6, 4), colour=(255, 0, 0), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make_source",
    [
        lambda data, path: data,
        lambda data, path: bytearray(data),
        lambda data, path: memoryview(data),
        lambda data, path: str(path),
        lambda data, path: path,
        lambda data, path: io.BytesIO(data),
        lambda data, path: open(path, "rb"),
    ],
    ids=["bytes", "bytearray", "memoryview", "str_path", "pathlib", "bytesio", "open_file"],
)
def test_load_image_accepts_every_source(tmp_path, make_source) -> None:
    data = _png()
    path = tmp_path / "red.png"
    path.write_bytes(data)
    source = make_source(data, path)
    image = load_image(source)
    if hasattr(source, "close"):
        source.close()
    assert image.mode == "RGB" and image.size == (6, 4)
    assert image.getpixel((0, 0)) == (255, 0, 0)
    assert type(image) is Image.Image  # detached from any file


def test_load_image_pil_input_returns_new_rgb_image() -> None:
    original = Image.new("RGBA", (5, 5), (0, 0, 255, 0))
    image = load_image(original)
    assert image is not original
    assert image.mode == "RGB" and image.getpixel((2, 2)) == (255, 255, 255)
    assert original.mode == "RGBA" and original.getpixel((2, 2)) == (0, 0, 255, 0)


def test_load_image_pil_input_from_open_file_applies_exif_and_limit(corpus: dict[str, Case]) -> None:
    with Image.open(corpus["exif_rotate_6"].path) as opened:
        assert load_image(opened).size == (60, 40)
        with pytest.raises(ImageLoadError, match="too large"):
            load_image(opened, max_pixels=100)


def test_load_image_pil_input_truncated_is_image_load_error(corpus: dict[str, Case]) -> None:
    with Image.open(corpus["truncated_png"].path) as opened:
        with pytest.raises(ImageLoadError, match="truncated or corrupt"):
            load_image(opened)


def test_max_pixels_is_checked_per_call() -> None:
    data = _png(size=(100, 100))
    assert load_image(data, max_pixels=10_000).size == (100, 100)
    assert load_image(data, max_pixels=None).size == (100, 100)
    with pytest.raises(ImageLoadError) as caught:
        load_image(data, max_pixels=9_999)
    assert "100 x 100" in str(caught.value) and "9,999 pixels" in str(caught.value)
    assert caught.value.reason == "too_large"


def test_max_pixels_does_not_depend_on_pillow_global(monkeypatch, corpus: dict[str, Case]) -> None:
    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone else switched Pillow's guard off
    with pytest.raises(ImageLoadError, match="40000 x 40000"):
        load_image(corpus["png_bomb_40000"].path)
    monkeypatch.undo()
    load_image(corpus["rgb_png"].path)
    assert Image.MAX_IMAGE_PIXELS == before  # and we never change it ourselves


def test_a_source_over_max_bytes_is_refused_as_too_large(tmp_path) -> None:
    data = _png(size=(64, 64))
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(ImageLoadError, match="too large") as caught:
            load_image(source, max_bytes=len(data) - 1)
        assert caught.value.reason == "too_large"
    assert load_image(data, max_bytes=len(data)).size == (64, 64)
    assert load_image(io.BytesIO(data), max_bytes=None).size == (64, 64)


def test_missing_path_and_folder(tmp_path) -> None:
    with pytest.raises(ImageLoadError, match="No such file: .*nope.png") as caught:
        load_image(tmp_path / "nope.png")
    assert caught.value.reason == "missing"
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_wrong_source_types_are_programming_errors(tmp_path) -> None:
    with pytest.raises(TypeError):
        load_image(42)  # type: ignore[arg-type]
    path = tmp_path / "a.png"
    path.write_bytes(_png())
    with open(path, encoding="latin-1") as text_file, pytest.raises(TypeError, match="binary"):
        load_image(text_file)  # type: ignore[arg-type]


def test_error_type_and_reasons(corpus: dict[str, Case]) -> None:
    assert issubclass(ImageLoadError, ValueError)
    reasons = {}
    for name in ("empty", "text_as_jpg", "truncated_jpeg", "png_bomb_40000"):
        with pytest.raises(ImageLoadError) as caught:
            load_image(corpus[name].path)
        reasons[name] = caught.value.reason
    assert reasons == {"empty": "empty", "text_as_jpg": "unsupported", "truncated_jpeg": "corrupt", "png_bomb_40000": "too_large"}


def test_only_raster_decoders_are_tried() -> None:
    assert "EPS" not in SUPPORTED_FORMATS and "PDF" not in SUPPORTED_FORMATS
    assert set(SUPPORTED_FORMATS) == {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}


def test_animated_gif_file_object_loads_first_frame(corpus: dict[str, Case]) -> None:
    with open(corpus["gif_3000_frames"].path, "rb") as f:
        assert load_image(f).getpixel((0, 0)) == (255, 0, 0)


# --- read_image_archive API ---------------------------------------------------------


def test_an_archives_images_come_back_in_order_and_each_loads_as_rgb(corpus: dict[str, Case]) -> None:
    result = read_image_archive(corpus["zip_three_images"].data())
    assert isinstance(result, ArchiveContents)
    assert [name for name, _ in result.images] == ["a.png", "b.jpg", "sub/c.gif"]
    assert all(load_image(data).mode == "RGB" for _, data in result.images)


def test_archive_keeps_odd_names_as_plain_strings(corpus: dict[str, Case]) -> None:
    result = read_image_archive(corpus["zip_path_traversal"].data())
    assert [name for name, _ in result.images] == ["../../evil.png", "/etc/evil.png"]


def test_archive_skip_reasons_are_readable(corpus: dict[str, Case]) -> None:
    ((name, reason),) = read_image_archive(corpus["zip_bomb"].data()).skipped
    assert name == "bomb.png" and "too large" in reason and "25 MB" in reason
    ((_, reason),) = read_image_archive(corpus["zip_encrypted"].data()).skipped
    assert "password" in reason
    ((_, reason),) = read_image_archive(corpus["zip_with_junk"].data()).skipped
    assert "not an image" in reason


def test_archive_limits_are_parameters() -> None:
    data = zip_of({f"{i}.png": _png() for i in range(5)})
    assert len(read_image_archive(data, max_files=5).images) == 5
    with pytest.raises(ArchiveError, match="5 images; the limit is 4"):
        read_image_archive(data, max_files=4)

    size = len(_png())
    result = read_image_archive(zip_of({"a.png": _png(), "big.png": _png(size=(50, 50))}), max_file_bytes=size)
    assert [n for n, _ in result.images] == ["a.png"] and result.skipped[0][0] == "big.png"

    with pytest.raises(ArchiveError, match="limit"):
        read_image_archive(data, max_total_bytes=4 * size)


def test_stream_cap_holds_even_if_declared_size_is_trusted() -> None:
    # zipfile itself stops at the declared size, so exercise our own hard cap directly.
    archive = zipfile.ZipFile(io.BytesIO(zip_of({"a.png": bytes(10_000)})))
    info = archive.getinfo("a.png")
    assert len(_read_capped(archive, info, 10_000)) == 10_000
    with pytest.raises(Exception) as caught:
        _read_capped(archive, info, 9_999)
    assert type(caught.value).__name__ == "_TooLarge"


@pytest.mark.parametrize(
    "mode", ["1", "L", "P", "I", "I;16", "F", "LA", "La", "PA", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "HSV", "LAB"]
)
def test_every_pillow_mode_becomes_rgb(mode: str) -> None:
    image = load_image(Image.new(mode, (3, 2)))
    assert image.mode == "RGB" and image.size == (3, 2)
