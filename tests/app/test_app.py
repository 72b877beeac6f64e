"""The Streamlit app driven through `AppTest`: every page, uploads, sliders, errors, page switches.

The app's default model comes from CAPTIONER_MODEL: the built-in model when it is shipped, else a
tiny random VisionGPT2 saved by the fixture (its captions are nonsense, but every path runs).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from captioner.app import state, views
from captioner.loading import BUILTIN_DIR

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
HAS_BUILTIN = (BUILTIN_DIR / "config.json").exists()


class _NavigationPagesManager(PagesManager):
    """AppTest forgets, before each run, that st.navigation turned off the legacy `pages/` folder mode.

    A real server remembers it after the first run; without this, AppTest runs a switched-to page
    without the entry point (no sidebar, no navigation).
    """

    def __init__(self, *args, **kwargs):
        PagesManager.uses_pages_directory = False
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def app_env(monkeypatch, tiny_visiongpt2_dir):
    import streamlit.testing.v1.app_test as app_test_module

    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CAPTIONER_MODEL", "builtin" if HAS_BUILTIN else str(tiny_visiongpt2_dir))
    yield
    PagesManager.uses_pages_directory = None


@pytest.fixture
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def png_bytes(color="red", size=(48, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def huge_png_header(width=30_000, height=30_000) -> bytes:
    """A PNG that claims 900 megapixels in a few dozen bytes (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    at.radio(key="img.source").set_value("Upload").run()
    at.file_uploader(key="img.upload").set_value((name, data, mime)).run()
    return at


def sidebar_image_caption(at: AppTest) -> str:
    return at.sidebar.image[-1].captions[0]


def test_caption_page_shows_caption_tokens_timings_and_json():
    at = start()
    assert [t.value for t in at.title] == ["Caption"]
    assert not at.error
    assert any("span title=\"p = " in m.value for m in at.markdown)
    labels = [m.label for m in at.metric]
    assert labels == ["Encode", "Decode", "Log-prob", "Tokens"]
    record = json.loads(at.code[0].value)
    assert record["image"] == sidebar_image_caption(at).split(" · ")[0]
    assert record["decoding"]["strategy"] == at.selectbox(key="dec.strategy").value
    assert at.get("download_button")
    # The model's own defaults fill the controls.
    assert "Model" in [s.value for s in at.sidebar.subheader]


def test_upload_then_slider_reruns_only_decoding(monkeypatch):
    calls = {"encode": 0}
    real_encode = state.encode_image

    def counting_encode(model, image):
        calls["encode"] += 1
        return real_encode(model, image)

    monkeypatch.setattr(state, "encode_image", counting_encode)
    at = upload(start(), "orange.png", png_bytes("orange"))
    assert sidebar_image_caption(at).startswith("orange.png")
    assert at.image[0].captions == ["orange.png"]
    encodes = calls["encode"]
    assert encodes >= 1
    at.slider(key="dec.max_new_tokens").set_value(3).run()
    record = json.loads(at.code[0].value)
    assert record["decoding"]["max_new_tokens"] == 3
    assert len(record["captions"][0]["tokens"]) <= 3
    at.selectbox(key="dec.strategy").set_value("beam").run()
    at.slider(key="dec.num_beams").set_value(3).run()
    assert json.loads(at.code[0].value)["decoding"]["num_beams"] == 3
    assert not at.slider(key="dec.num_beams").disabled and at.slider(key="dec.top_p").disabled
    assert calls["encode"] == encodes, "changing decoding settings must not re-encode the image"
    assert not at.exception and not at.error


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.png", b"this is not an image", "not an image"),
        ("cut.png", png_bytes()[:60], "truncated or corrupt"),
        ("empty.jpg", b"", "empty"),
        ("bomb.png", huge_png_header(), "too large"),
    ],
)
def test_bad_upload_shows_message_and_keeps_image(name, data, message):
    at = start()
    before = sidebar_image_caption(at)
    upload(at, name, data)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(f"Could not use {name}" in e and message in e for e in errors), errors
    assert sidebar_image_caption(at) == before  # the previous image stays selected and captioned
    assert at.metric


def test_gallery_and_camera_select_the_image():
    at = start()
    at.button(key="img.example.2").click().run()
    assert sidebar_image_caption(at).startswith(state.gallery()[2].name)
    assert at.image[0].captions == [state.gallery()[2].name]
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "purple").save(buf, format="JPEG")
    at.radio(key="img.source").set_value("Camera").run()
    at.camera_input(key="img.camera").set_value(("photo.jpg", buf.getvalue(), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert sidebar_image_caption(at) == "camera photo · 64×48"


def test_page_switch_keeps_image_and_settings():
    at = upload(start(), "teal.png", png_bytes("teal"))
    at.slider(key="dec.max_new_tokens").set_value(4).run()
    for page in ("pages/compare.py", "pages/explain.py", "pages/caption.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert sidebar_image_caption(at).startswith("teal.png"), page
    assert at.slider(key="dec.max_new_tokens").value == 4
    assert at.image[0].captions == ["teal.png"]


def test_compare_page_decodes_all_strategies_in_one_call(monkeypatch):
    calls = []
    real_decode = state.decode

    def counting_decode(model, encoded, configs):
        calls.append([c.label for c in configs])
        return real_decode(model, encoded, configs)

    monkeypatch.setattr(state, "decode", counting_decode)
    at = upload(start(), "lime.png", png_bytes("lime"))
    calls.clear()
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not at.error
    assert len(calls) == 1 and calls[0][0] == "greedy" and calls[0][2:] == ["top-k (50)", "top-p (0.9)"]
    table = at.dataframe[0].value
    assert list(table["strategy"]) == calls[0]
    assert len(table) == 4 and {"caption", "log-prob", "length", "time (s)", "distinct-2"} <= set(table.columns)
    samples, beams = at.dataframe[1].value, at.dataframe[2].value
    assert len(samples) == 2 * at.slider(key="cmp.samples").value
    assert len(beams) >= 1
    assert at.get("plotly_chart")
    assert at.get("download_button")

    # A configuration of one's own joins the same single decode call.
    at.text_input(key="cmp.new.label").input("careful beam")
    at.selectbox(key="cmp.new.strategy").set_value("beam")
    at.slider(key="cmp.new.num_beams").set_value(2)
    calls.clear()
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["strategy"])[-1] == "careful beam"
    assert len(calls) == 1 and len(calls[0]) == 5

    at.slider(key="cmp.samples").set_value(3).run()
    assert len(at.dataframe[1].value) == 6


def test_explain_page_charts_alternatives_and_heatmaps():
    at = start("pages/explain.py")
    assert not at.error
    assert len(at.get("plotly_chart")) == 1
    alternatives = at.dataframe[0].value
    assert {"step", "chosen", "p", "#1"} <= set(alternatives.columns)
    words = at.radio(key="xpl.word").options
    assert len(words) >= 1
    assert len(at.main.image) == len(words) + 1  # one overlay per word, plus the chosen word's large one
    at.selectbox(key="xpl.layer").set_value(0).run()
    at.selectbox(key="xpl.head").set_value(views.HEAD_MAX).run()
    if len(words) > 1:
        at.radio(key="xpl.word").set_value(1).run()
    assert not at.exception and not at.error
    assert at.get("download_button")


def test_batch_page_files_zip_references_and_bad_files():
    at = start("pages/batch.py")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("inner/blue.png", png_bytes("blue"))
        z.writestr("readme.txt", "not an image")
    at.file_uploader(key="batch.files").set_value(
        [
            ("red.png", png_bytes("red"), "image/png"),
            ("broken.jpg", b"\xff\xd8\xff garbage", "image/jpeg"),
            ("pack.zip", zbuf.getvalue(), "application/zip"),
        ]
    ).run()
    at.text_area(key="batch.opt.refs").input("red.png: a red square | a big red square\nblue: a blue square").run()
    at.button(key="batch.run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table["file"]) == {"red.png", "broken.jpg", "pack.zip/inner/blue.png", "pack.zip/readme.txt"}
    ok = table[table["problem"] == ""]
    assert set(ok["file"]) == {"red.png", "pack.zip/inner/blue.png"}
    assert ok["thumbnail"].str.startswith("data:image/png;base64,").all()
    warning = at.warning[0].value
    assert "broken" in warning and "readme" in warning and "2 of 4" in warning
    assert [m.label for m in at.metric] == ["BLEU-4", "CIDEr-D", "Images with references"]
    assert at.metric[2].value == "2"
    assert at.get("download_button")


def test_batch_examples_bring_their_references():
    at = start("pages/batch.py")
    at.checkbox(key="batch.opt.examples").check().run()
    at.button(key="batch.run").click().run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == len(state.gallery())
    assert at.metric[0].label == "BLEU-4"


def test_model_that_fails_to_load_keeps_the_old_one(tmp_path):
    at = start()
    caption_before = json.loads(at.code[0].value)["caption"]
    bad = tmp_path / "captioner.pt"
    bad.write_bytes(b"not a checkpoint")
    at.radio(key="model.kind").set_value("Local path").run()
    at.text_input(key="model.path").input(str(bad)).run()
    at.button(key="model.load").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "Could not load" in errors and "keeps using the model it had" in errors
    assert at.session_state["model_spec"] == state.DEFAULT_SPEC
    assert json.loads(at.code[0].value)["caption"] == caption_before


def test_unknown_hub_model_shows_why():
    at = start()
    at.radio(key="model.kind").set_value("Hugging Face hub").run()
    at.text_input(key="model.hub").input("nobody-here/no-such-captioner").run()
    at.button(key="model.load").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "Could not load nobody-here/no-such-captioner" in errors
    assert at.metric  # the page still captions with the model it had


def test_switching_model_resets_controls_to_its_defaults(tiny_hf_dir):
    at = start()
    at.slider(key="dec.max_new_tokens").set_value(2).run()
    at.radio(key="model.kind").set_value("Local path").run()
    at.text_input(key="model.path").input(str(tiny_hf_dir)).run()
    at.button(key="model.load").click().run()
    assert not at.exception and not at.error
    assert "hf-vision-encoder-decoder" in " ".join(c.value for c in at.sidebar.caption)
    assert at.slider(key="dec.max_new_tokens").value != 2
    at.switch_page("pages/explain.py").run()
    assert not at.exception and not at.error and at.radio(key="xpl.word")


def test_default_model_failure(monkeypatch, tmp_path, fresh_caches):
    monkeypatch.setenv("CAPTIONER_MODEL", str(tmp_path / "missing.pt"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    if HAS_BUILTIN:
        assert "Using the built-in model" in " ".join(w.value for w in at.sidebar.warning)
        assert at.metric
    else:
        assert any("Could not load the default model" in e.value for e in at.error)


def test_unexpected_error_becomes_a_message(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(state, "decode", broken)
    at = upload(start(), "pink.png", png_bytes("pink"))
    assert not at.exception
    assert any("Something went wrong" in e.value for e in at.error)
    assert not any("internal detail" in e.value for e in at.error)


def test_sessions_share_one_model_safely(tiny_visiongpt2_dir):
    """Several threads (sessions) decoding on one LoadedModel get what one thread alone gets."""
    import threading

    from captioner.config import DecodingConfig
    from captioner.loading import load_captioner

    lm = state.LoadedModel(load_captioner(str(tiny_visiongpt2_dir)), "x", "x#1", threading.Lock())
    images = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue", "white")]
    configs = [DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=8),
               DecodingConfig(strategy="sample", num_return_sequences=3, max_new_tokens=8)]
    expected = [[c.text for r in lm.decode(lm.encode(im), configs) for c in r.captions] for im in images]
    got: dict[int, list[str]] = {}

    def work(i: int) -> None:
        for _ in range(3):
            got[i] = [c.text for r in lm.decode(lm.encode(images[i]), configs) for c in r.captions]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(images))] == expected


def test_expand_uploads_reports_bad_archives():
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("a.png", png_bytes())
        z.writestr("__MACOSX/._a.png", b"junk")
    items, problems = state.expand_uploads(
        [("x.png", b"1"), ("fake.zip", b"not a zip"), ("good.zip", good.getvalue())]
    )
    assert [name for name, _ in items] == ["x.png", "good.zip/a.png"]
    assert [(p.name, "ZIP" in p.problem) for p in problems] == [("fake.zip", True)]


def test_every_corpus_image_through_the_upload(tmp_path):
    """The hostile-image corpus through the upload widget: a caption, or the case's message; never an exception."""
    from tests.corpus import build_image_corpus

    at = start()
    # The uploader itself only takes these extensions; other files never reach the app.
    cases = [c for c in build_image_corpus(tmp_path) if c.filename.lower().endswith(tuple("." + t for t in state.IMAGE_TYPES))]
    assert len(cases) >= 30
    for case in cases:
        upload(at, case.filename, case.data(), "application/octet-stream")
        assert not at.exception, (case.name, at.exception)
        errors = [e.value for e in at.error]
        if case.expected == "ok":
            assert not errors, (case.name, errors)
            assert sidebar_image_caption(at).startswith(case.filename), case.name
        else:
            assert errors and not case.error_problems(" ".join(errors)), (case.name, errors)
