"""The Streamlit app driven through `AppTest`: every page, uploads, sliders, errors, page switches, links.

The app's default model comes from CAPTIONER_MODEL: the built-in model when it is shipped, else a
tiny random VisionGPT2 saved by the fixture (its captions are nonsense, but every path runs).
"""

from __future__ import annotations

import html
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from captioner.app import notes, settings
from captioner.app.model_text import DEFAULT_SPEC
from captioner.app.ui import batch as ui_batch
from captioner.app.ui import controls, image, keys
from captioner.app.ui import model as ui_model
from captioner.config import STRATEGIES, DecodingConfig
from captioner.images import IMAGE_EXTENSIONS
from captioner.loading import BUILTIN_DIR
from captioner.app.views.text import markdown_escape, score_basis

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
HAS_BUILTIN = (BUILTIN_DIR / "config.json").exists()
CAPTION, COMPARE, EXPLAIN, BATCH = (f"app_pages/{p}.py" for p in ("caption", "compare", "explain", "batch"))


@pytest.fixture(autouse=True)
def app_env(monkeypatch, tiny_visiongpt2_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CAPTIONER_MODEL", "builtin" if HAS_BUILTIN else str(tiny_visiongpt2_dir))


@pytest.fixture
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def png_bytes(color="red", size=(48, 40), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def huge_png_header(width=30_000, height=30_000) -> bytes:
    """A PNG that claims 900 megapixels in a few dozen bytes (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def start(page: str | None = None, params: dict | None = None) -> AppTest:
    """A new session, as a browser opening the app (on `page`, with the URL's `params`) would start one."""
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    at.radio(key="img.source").set_value("Upload").run()
    at.sidebar.file_uploader[0].set_value((name, data, mime)).run()
    return at


def sidebar_image_caption(at: AppTest) -> str:
    return html.unescape(at.sidebar.image[-1].captions[0])  # names are escaped: captions are Markdown


def caption_record(at: AppTest) -> dict:
    return json.loads(at.code[0].value)


def model_limit() -> int:
    return ui_model.shared_model(DEFAULT_SPEC).token_limit


# -- Caption page --------------------------------------------------------------------------------
def test_caption_page_shows_caption_tokens_figures_and_json():
    at = start()
    assert [t.value for t in at.title] == ["Caption"]
    assert not at.error
    assert any('span title="p = ' in m.value for m in at.markdown)
    assert [m.label for m in at.metric] == ["Encode", "Decode", "Confidence", "Log-prob", "Tokens"]
    record = caption_record(at)
    assert record["image"] == sidebar_image_caption(at).split(" · ")[0]
    assert record["decoding"]["strategy"] == at.selectbox(key="dec.strategy").value
    assert 0 <= record["captions"][0]["confidence"] <= 1
    assert at.metric[2].value == f"{record['captions'][0]['confidence']:.2f}"
    assert at.get("download_button")
    assert "How to read this" in [e.label for e in at.expander]


@pytest.mark.skipif(not HAS_BUILTIN, reason="the built-in model is not shipped")
def test_builtin_model_says_what_it_knows():
    at = start()
    assert any("knows only its own world" in i.value for i in at.main.info)
    assert any("knows scenes of 1 to 3 objects" in c.value for c in at.sidebar.caption)


def test_caption_cut_at_the_limit_is_marked():
    at = start()
    at.slider(key="dec.max_new_tokens").set_value(1).run()
    assert caption_record(at)["captions"][0]["hit_limit"]
    assert any(
        "stopped at the limit of 1 token instead" in w.value and "Raise *Max new tokens* (up to " in w.value for w in at.warning
    )
    assert any("cut at the limit" in m.value for m in at.markdown)


def test_out_of_world_flag_in_plain_words(monkeypatch, fresh_caches):
    at = start()
    model = ui_model.shared_model(DEFAULT_SPEC).model
    monkeypatch.setattr(model, "calibration", {"confidence_threshold": 1.01})  # every caption is below it
    at.slider(key="dec.max_new_tokens").set_value(5).run()  # new settings: decoded again
    assert any(notes.OUT_OF_WORLD_NOTE == w.value for w in at.warning)
    monkeypatch.setattr(model, "calibration", {"confidence_threshold": 0.0})
    at.slider(key="dec.max_new_tokens").set_value(6).run()
    assert not any(notes.OUT_OF_WORLD_NOTE == w.value for w in at.warning)


@pytest.mark.skipif(not HAS_BUILTIN, reason="the built-in model's calibration is needed")
@pytest.mark.parametrize(
    "settings_",
    [
        {"dec.strategy": "sample", "dec.temperature": 2.0, "dec.seed": "8"},
        {"dec.repetition_penalty": 0.5},
        {"dec.no_repeat_ngram_size": 1},
    ],
)
def test_out_of_world_note_judges_the_image_not_the_settings(settings_):
    at = start()
    for key, value in settings_.items():
        widget = (
            at.selectbox(key=key)
            if key == "dec.strategy"
            else (at.text_input(key="dec.seed.text") if key == "dec.seed" else at.slider(key=key))
        )
        (widget.input(value) if key == "dec.seed" else widget.set_value(value)).run()
    assert not at.exception
    assert not any(
        markdown_escape(notes.OUT_OF_WORLD_NOTE) == w.value or notes.OUT_OF_WORLD_NOTE == w.value for w in at.warning
    )  # example 1 is a scene of the model's world
    unsure = [w.value for w in at.warning if "unsure" in w.value]
    for w in unsure:  # where the settings made it unsure, they are named
        assert any(name in w for name in ("temperature 2", "repetition penalty 0.5", "no-repeat n-gram size 1"))


@pytest.mark.skipif(not HAS_BUILTIN, reason="the built-in model's own settings are needed")
def test_limit_advice_never_asks_beyond_the_sliders_end():
    at = start()
    at.slider(key="dec.no_repeat_ngram_size").set_value(1).run()
    at.slider(key="dec.max_new_tokens").set_value(model_limit()).run()
    limit_notes = [w.value for w in at.warning if "stopped at the limit" in w.value]
    assert all("Raise" not in w for w in limit_notes)
    if caption_record(at)["captions"][0]["hit_limit"]:
        assert limit_notes and ("no-repeat n-gram size 1" in limit_notes[0] or "most this model holds" in limit_notes[0])


def test_caption_page_starts_at_the_models_own_settings_as_the_cli_does(capsys, tmp_path):
    from captioner.__main__ import main

    at = start()
    model = ui_model.shared_model(DEFAULT_SPEC).model
    own = model.default_decoding
    for name in ("no_repeat_ngram_size", "repetition_penalty", "max_new_tokens"):
        assert at.slider(key="dec." + name).value == getattr(own, name)
        assert at.slider(key="dec." + name).max >= getattr(own, name)
    example = image.gallery()[0]
    path = tmp_path / example.name
    path.write_bytes(example.data)
    assert main([str(path), "--json"]) == 0  # the CLI with no options
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert caption_record(at)["caption"] == cli["caption"]


def test_seed_box_refuses_what_is_not_a_whole_number_and_takes_64_bits():
    at = start()
    at.selectbox(key="dec.strategy").set_value("sample").run()
    at.text_input(key="dec.seed.text").input("8").run()
    assert caption_record(at)["decoding"]["seed"] == 8
    for bad in ("1e3", "3.7", "-1", str(2**64)):
        at.text_input(key="dec.seed.text").input(bad).run()
        assert not at.exception
        assert any("is not a whole number from 0 to 2^64" in e.value for e in at.error), bad
        assert caption_record(at)["decoding"]["seed"] == 8 and at.text_input(key="dec.seed.text").value == "8"
    at.text_input(key="dec.seed.text").input(str(2**64 - 1)).run()
    assert caption_record(at)["decoding"]["seed"] == 2**64 - 1 and not at.error
    assert dict(at.query_params)["seed"] == str(2**64 - 1)


def test_result_from_the_cache_is_marked():
    at = start()
    at.slider(key="dec.max_new_tokens").set_value(7).run()
    marks = [c.value for c in at.main.caption if "from the cache" in c.value]
    at.slider(key="dec.max_new_tokens").set_value(8).run()
    at.slider(key="dec.max_new_tokens").set_value(7).run()  # the same settings again
    assert not marks
    assert any("from the cache" in c.value for c in at.main.caption)


def test_model_is_warmed_up_when_it_loads(monkeypatch, fresh_caches):
    calls = []
    real = ui_model.decode
    monkeypatch.setattr(ui_model, "decode", lambda *a, **k: calls.append(a) or real(*a, **k))
    lm = ui_model.shared_model(DEFAULT_SPEC)
    assert len(calls) == 1 and {c.strategy for c in calls[0][2]} == set(STRATEGIES)
    assert calls[0][0] is lm.model and lm.spec == DEFAULT_SPEC  # the warm-up ran on the model handed out


def test_upload_then_slider_reruns_only_decoding(monkeypatch):
    calls = {"encode": 0}
    real_encode = ui_model.encode_image

    def counting_encode(model, image):
        calls["encode"] += 1
        return real_encode(model, image)

    monkeypatch.setattr(ui_model, "encode_image", counting_encode)
    at = upload(start(), "orange.png", png_bytes("orange"))
    assert sidebar_image_caption(at).startswith("orange.png")
    assert [html.unescape(c) for c in at.main.image[0].captions] == ["orange.png"]
    encodes = calls["encode"]
    assert encodes >= 1
    at.slider(key="dec.max_new_tokens").set_value(3).run()
    record = caption_record(at)
    assert record["decoding"]["max_new_tokens"] == 3
    assert len(record["captions"][0]["tokens"]) <= 3
    at.selectbox(key="dec.strategy").set_value("beam").run()
    at.slider(key="dec.num_beams").set_value(3).run()
    assert caption_record(at)["decoding"]["num_beams"] == 3
    assert not at.slider(key="dec.num_beams").disabled and at.slider(key="dec.top_p").disabled
    assert calls["encode"] == encodes, "changing decoding settings must not re-encode the image"
    assert not at.exception and not at.error


# -- max new tokens: the slider ends at the model's positions on every page; a failing row ---------
def noise_png(size=64) -> bytes:
    """Pixels from no world at all: the built-in model rambles on such an image instead of ending."""
    import numpy as np

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_max_new_tokens_slider_ends_at_the_models_limit_on_every_page():
    at = upload(start(), "noise.png", noise_png())
    model = ui_model.shared_model(DEFAULT_SPEC).model
    limit = min(model.max_new_tokens_limit, 128)  # the positions after the start token, and the app's cap
    slider = at.slider(key="dec.max_new_tokens")
    assert slider.max == limit
    slider.set_value(slider.max).run()  # the caption runs to the limit, and not one step further
    assert not at.exception and not at.error, [e.value for e in at.error]
    record = caption_record(at)
    assert record["decoding"]["max_new_tokens"] == limit and len(record["captions"][0]["tokens"]) <= limit
    at.switch_page(EXPLAIN).run()
    assert not at.exception and not at.error and at.radio(key="xpl.word")
    at.switch_page(COMPARE).run()
    at.slider(key="cmp.new.max_new_tokens").set_value(at.slider(key="cmp.new.max_new_tokens").max)
    at.button(key="compare.add").click().run()
    assert not at.exception and not at.error
    assert len(at.table[0].value) == 5


def test_compare_one_failing_configuration_shows_its_own_error(monkeypatch):
    real = ui_model.decode

    def fails_on_boom(model, encoded, configs):
        if any(c.label == "boom" for c in configs):
            raise RuntimeError("index out of range in self")
        return real(model, encoded, configs)

    monkeypatch.setattr(ui_model, "decode", fails_on_boom)
    at = start(COMPARE)
    at.text_input(key="cmp.new.label").input("boom")
    at.button(key="compare.add").click().run()
    assert not at.exception
    errors = [html.unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "“boom” could not be decoded (RuntimeError)" in errors[0]
    assert "index out of range" not in errors[0]
    assert list(at.table[0].value["strategy"])[0] == "greedy"
    assert len(at.table[0].value) == 4  # the four others still show


# -- Compare: one decoding call, added configurations, the score note, sampled rows, downloads -----
def test_compare_page_decodes_all_strategies_in_one_call(monkeypatch):
    calls = []
    real_decode = ui_model.decode

    def counting_decode(model, encoded, configs):
        calls.append([c.label for c in configs])
        return real_decode(model, encoded, configs)

    monkeypatch.setattr(ui_model, "decode", counting_decode)
    at = upload(start(), "lime.png", png_bytes("lime"))
    calls.clear()
    at.switch_page(COMPARE).run()
    assert not at.exception and not at.error
    top_k = settings.compare_defaults(DecodingConfig(), controls.vocab_size(ui_model.shared_model(DEFAULT_SPEC).model))["top_k"]
    assert len(calls) == 1 and calls[0][0] == "greedy" and calls[0][2:] == [f"top-k ({top_k})", "top-p (0.9)"]
    table = at.table[0].value
    assert list(table["strategy"]) == calls[0]
    assert {"caption", "log-prob (nats)", "score (nats)", "score uses", "tokens", "distinct-1", "distinct-2"} <= set(
        table.columns
    )
    assert "batched call of" in " ".join(c.value for c in at.main.caption)
    samples, beams = at.table[1].value, at.table[2].value
    assert len(samples) == 2 * at.slider(key="cmp.samples").value
    assert len(beams) >= 1
    assert at.get("plotly_chart") and len(at.get("download_button")) == 2
    at.slider(key="cmp.samples").set_value(3).run()
    assert len(at.table[1].value) == 6


def added_count(at: AppTest) -> str:
    return [c.value for c in at.main.caption if c.value.endswith(" added.")][0]


def test_compare_added_configuration_count_name_and_unique_names():
    at = start(COMPARE)
    assert added_count(at) == "0 configurations added."
    at.text_input(key="cmp.new.label").input("careful beam")
    at.selectbox(key="cmp.new.strategy").set_value("beam").run()
    assert not at.slider(key="cmp.new.num_beams").disabled and at.slider(key="cmp.new.top_p").disabled
    at.slider(key="cmp.new.num_beams").set_value(2)
    at.button(key="compare.add").click().run()
    assert added_count(at) == "1 configuration added."
    assert list(at.table[0].value["strategy"])[-1] == "careful beam"
    assert at.text_input(key="cmp.new.label").value == ""  # the name field clears
    at.text_input(key="cmp.new.label").input("careful beam")
    at.button(key="compare.add").click().run()
    names = list(at.table[0].value["strategy"])
    assert names[-2:] == ["careful beam", "careful beam (2)"] and len(set(names)) == len(names)
    at.text_input(key="cmp.new.label").input("greedy")
    at.button(key="compare.add").click().run()
    assert list(at.table[0].value["strategy"])[-1] == "greedy (2)"
    at.button(key="compare.remove.0").click().run()
    assert added_count(at) == "2 configurations added."
    assert "careful beam (2)" not in list(at.table[0].value["strategy"])


def test_compare_score_note_agrees_with_the_numbers():
    at = start(COMPARE)
    table = at.table[0].value
    note = " ".join(c.value for c in at.main.caption)
    default = DecodingConfig() if not HAS_BUILTIN else ui_model.shared_model(DEFAULT_SPEC).model.default_decoding
    penalty = default.length_penalty
    assert "divided by tokens ** length penalty" in note and "compare rows by log-prob" in note
    assert {"log-prob (nats)", "score (nats)"} <= set(table.columns)  # the units are in the headers
    for _, row in table.iterrows():
        if row["score uses"] == "model's own":  # the score is made of the log-probs shown beside it
            assert row["score (nats)"] == pytest.approx(row["log-prob (nats)"] / row["tokens"] ** penalty, abs=2e-3)
    # the model's own processors (e.g. the built-in model's no-repeat n-grams) are named after the row's
    top_k = settings.compare_defaults(DecodingConfig(), controls.vocab_size(ui_model.shared_model(DEFAULT_SPEC).model))["top_k"]
    assert table.loc[3, "score uses"].startswith("after top-p 0.9")
    assert table.loc[2, "score uses"].startswith(f"after top-k {top_k}")
    assert table.loc[0, "score uses"] == score_basis(default)  # the first row is the model's own settings


def test_compare_score_note_holds_for_sampled_rows():
    at = start(COMPARE)
    at.selectbox(key="cmp.new.strategy").set_value("sample").run()
    at.slider(key="cmp.new.temperature").set_value(2.0).run()
    at.text_input(key="cmp.new.seed.text").input("8").run()
    at.button(key="compare.add").click().run()
    table = at.table[0].value
    note = " ".join(c.value for c in at.main.caption)
    assert table["strategy"].str.contains("T 2").any()
    assert "higher than" not in note and "higher or lower" in note  # no direction claimed: it differs per row
    assert "summed" in note and "(nats)" in note


def test_compare_default_sampling_rows_do_not_share_a_seed_and_the_panel_stays_open():
    at = start(COMPARE)
    table = at.table[0].value
    seeds = table[table["strategy"].str.startswith(("top-k", "top-p"))]["seed"]
    assert seeds.nunique() == 2
    at.button(key="compare.add").click().run()
    assert [e.label for e in at.expander if "own configuration" in e.label] == ["Add your own configuration"]
    assert at.expander[[e.label for e in at.expander].index("Add your own configuration")].proto.expanded


def test_compare_offers_every_caption_as_csv_and_json():
    at = start(COMPARE)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Every caption (CSV)", "Everything (JSON)"]  # contents: tests/unit/test_views.py


# -- a fresh server opened on a page (a shared link) has the app's sidebar -------------------------
def test_a_page_opened_first_has_the_app_sidebar():
    """Each AppTest run recomputes, as a fresh server does, whether a `pages/` folder is a legacy app."""
    at = start(COMPARE)
    assert [t.value for t in at.title] == ["Compare decoding strategies"]
    assert {"Model", "Image"} <= {s.value for s in at.sidebar.subheader}
    assert at.radio(key="model.kind").value == "Default"
    assert not (ROOT / "pages").exists()


# -- choosing an image: uploads of every type, bad uploads, the gallery, the camera, page switches -
def test_uploader_accepts_every_type_load_image_reads():
    at = start()
    at.radio(key="img.source").set_value("Upload").run()
    allowed = {"." + t.lstrip(".") for t in at.sidebar.file_uploader[0].allowed_type}
    assert set(IMAGE_EXTENSIONS) <= allowed and {".tif", ".tiff"} <= allowed
    upload(at, "scan.tiff", png_bytes("navy", fmt="TIFF"), "image/tiff")
    assert not at.error and sidebar_image_caption(at).startswith("scan.tiff")


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.png", b"this is not an image", "not an image"),
        ("cut.png", png_bytes()[:60], "truncated or corrupt"),
        ("empty.jpg", b"", "empty"),
        ("bomb.png", huge_png_header(), "too large"),
    ],
)
def test_bad_upload_shows_one_message_empties_the_uploader_and_keeps_image(name, data, message):
    at = start()
    before = sidebar_image_caption(at)
    upload(at, name, data)
    assert not at.exception
    errors = [html.unescape(e.value) for e in at.error]
    assert len(errors) == 1 and f"Could not use {name}" in errors[0] and message in errors[0], errors
    assert at.sidebar.file_uploader[0].value is None  # the refused file is not shown as if in use
    assert sidebar_image_caption(at) == before  # the previous image stays selected and captioned
    assert at.metric
    upload(at, "fine.png", png_bytes("green"))
    assert not at.error and sidebar_image_caption(at).startswith("fine.png")


def test_gallery_thumbnails_select_and_show_the_chosen_one():
    at = start()
    buttons = [b for b in at.sidebar.button if b.key.startswith("gallery.")]
    assert len(buttons) == len(image.gallery()) and buttons[0].proto.type == "primary"
    at.button(key="gallery.2").click().run()
    assert sidebar_image_caption(at).startswith(image.gallery()[2].name)
    assert [html.unescape(c) for c in at.main.image[0].captions] == [image.gallery()[2].name]
    kinds = {b.key: b.proto.type for b in at.sidebar.button if b.key.startswith("gallery.")}
    assert list(kinds.values()).count("primary") == 1 and kinds["gallery.2"] == "primary"


def test_camera_selects_the_image():
    at = start()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "purple").save(buf, format="JPEG")
    at.radio(key="img.source").set_value("Camera").run()
    at.sidebar.camera_input[0].set_value(("photo.jpg", buf.getvalue(), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert sidebar_image_caption(at) == "camera photo · 64×48"


def test_page_switch_keeps_image_and_settings():
    at = upload(start(), "teal.png", png_bytes("teal"))
    at.slider(key="dec.max_new_tokens").set_value(4).run()
    for page in (COMPARE, EXPLAIN, CAPTION):
        at.switch_page(page).run()
        assert not at.exception
        assert sidebar_image_caption(at).startswith("teal.png"), page
    assert at.slider(key="dec.max_new_tokens").value == 4
    assert [html.unescape(c) for c in at.main.image[0].captions] == ["teal.png"]


# -- Explain ------------------------------------------------------------------------------------
def test_explain_page_charts_alternatives_and_heatmaps():
    at = start(EXPLAIN)
    assert not at.error
    assert len(at.get("plotly_chart")) == 2  # the steps, and the chosen word's attention with its colour scale
    attention = json.loads(at.get("plotly_chart")[1].proto.spec)
    legend = [t for t in attention["data"] if t["type"] == "scatter"][0]
    assert legend["marker"]["showscale"] and legend["marker"]["colorscale"]
    alternatives = at.dataframe[0].value
    assert {"step", "chosen", "p", "#1"} <= set(alternatives.columns)
    words = at.radio(key="xpl.word").options
    assert len(words) >= 1
    # the grid (one overlay per word), the original beside the large one, the hide-a-region grid
    assert len(at.main.image) == len(words) + 2
    at.selectbox(key="xpl.layer").set_value(0).run()
    at.selectbox(key="xpl.head").set_value(settings.HEAD_MAX).run()
    at.slider(key="xpl.opacity").set_value(0.3).run()
    if len(words) > 1:
        at.radio(key="xpl.word").set_value(1).run()
    assert not at.exception and not at.error
    attention = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert "layer 1" in attention["layout"]["title"]["text"] and "max over heads" in attention["layout"]["title"]["text"]
    assert "heatmap figure" in at.get("download_button")[0].proto.label  # its title: tests/unit/test_views.py


# -- sliders at their ends and beyond, every page ------------------------------------------------
def _slider_keys(at: AppTest, prefix: str) -> list[str]:
    return [s.key for s in at.slider if s.key and s.key.startswith(prefix) and not s.disabled]


@pytest.mark.slow
@pytest.mark.parametrize("page, prefix", [(CAPTION, "dec."), (COMPARE, "cmp."), (EXPLAIN, "xpl.")])
def test_every_slider_at_its_ends_and_beyond(page, prefix):
    at = start(page)
    if page == CAPTION:
        at.selectbox(key="dec.strategy").set_value("sample").run()  # every slider enabled but the beam ones
    keys = _slider_keys(at, prefix)
    assert keys
    for key in keys:
        slider = at.slider(key=key)
        lo, hi = slider.min, slider.max
        for value in (lo, hi):
            at.slider(key=key).set_value(value).run()
            assert not at.exception and not at.error, (key, value, [e.value for e in at.error])
            assert at.slider(key=key).value == value
        step = at.slider(key=key).step
        for beyond in (lo - step, hi + 10 * step):  # a forged value: the widget falls back in range
            at.slider(key=key).set_value(beyond).run()
            assert not at.exception and not at.error, (key, beyond)
            assert lo <= at.slider(key=key).value <= hi
        at.session_state[key] = hi * 3 + 7  # a value stored from elsewhere
        at.run()
        assert not at.exception and not at.error and lo <= at.slider(key=key).value <= hi, key


# -- shareable state in the URL ------------------------------------------------------------------
def test_settings_go_into_the_url_and_a_link_opens_the_same_view():
    at = start()
    at.button(key="gallery.3").click().run()
    at.selectbox(key="dec.strategy").set_value("beam").run()
    at.slider(key="dec.num_beams").set_value(6).run()
    params = dict(at.query_params)
    assert params["strategy"] == "beam" and params["num_beams"] == "6"
    links = {link.proto.label: link.proto.page for link in at.sidebar.get("page_link")}
    assert set(links) == {"Caption", "Compare", "Models", "Explain", "Batch"}
    explain_link = [link for link in at.sidebar.get("page_link") if link.proto.label == "Explain"][0]
    assert "num_beams=6" in explain_link.proto.query_string and "image=" in explain_link.proto.query_string
    assert params["image"] == image.gallery()[3].name
    caption = caption_record(at)["caption"]
    again = start(params=params)  # the link, in a new session
    assert again.selectbox(key="dec.strategy").value == "beam" and again.slider(key="dec.num_beams").value == 6
    assert sidebar_image_caption(again).startswith(image.gallery()[3].name)
    assert caption_record(again)["caption"] == caption


def test_compare_link_carries_its_sliders_and_added_configurations():
    at = start(COMPARE)
    at.slider(key="cmp.beams").set_value(5).run()
    at.text_input(key="cmp.new.label").input("hot")
    at.selectbox(key="cmp.new.strategy").set_value("sample").run()
    at.slider(key="cmp.new.temperature").set_value(1.5)
    at.button(key="compare.add").click().run()
    params = {k: v for k, v in at.query_params.items()}
    assert params["compare_beams"] == "5" and "hot" in str(params["compare_add"])
    opened = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        opened.query_params[k] = v
    opened.switch_page(COMPARE).run()
    assert not opened.exception and not opened.error
    assert opened.slider(key="cmp.beams").value == 5
    assert list(opened.table[0].value["strategy"]) == list(at.table[0].value["strategy"])
    assert {"Model", "Image"} <= {s.value for s in opened.sidebar.subheader}


def test_explain_link_carries_the_caption_settings_and_its_own():
    at = start(EXPLAIN, params={"strategy": "beam", "num_beams": "3", "layer": "1", "head": "max", "opacity": "0.4", "word": "2"})
    assert not at.exception and not at.error
    assert at.radio(key="xpl.word").value == 1
    assert at.selectbox(key="xpl.layer").value == 0 and at.selectbox(key="xpl.head").value == settings.HEAD_MAX
    assert at.slider(key="xpl.opacity").value == 0.4
    assert "beam (3)" in " ".join(c.value for c in at.main.caption)
    assert dict(at.query_params)["num_beams"] == "3"


def test_link_values_beyond_the_ranges_are_fitted_and_said():
    at = start(params={"max_new_tokens": "999", "temperature": "abc", "strategy": "nonsense", "top_p": "-3"})
    assert not at.exception and not at.error
    assert at.slider(key="dec.max_new_tokens").value == model_limit()
    assert at.slider(key="dec.top_p").value == 0.05
    notes = html.unescape(" ".join(i.value for i in at.main.info))
    assert "max_new_tokens=999 is outside" in notes and "'abc' is not a number" in notes
    assert "'nonsense' is not one of greedy, beam, sample" in notes
    at.run()
    assert not any("max_new_tokens=999" in i.value for i in at.main.info)  # said once


def test_link_with_an_unknown_model_or_image_falls_back_and_says_so():
    at = start(params={"model": "nobody-here/no-such-captioner", "image": "nothing.png"})
    assert not at.exception
    errors = html.unescape(" ".join(e.value for e in at.sidebar.error))
    assert errors.count("nobody-here/no-such-captioner") == 1
    assert at.radio(key="model.kind").value == "Default"
    assert "not one of the examples" in " ".join(i.value for i in at.main.info)
    assert at.metric


# -- Batch --------------------------------------------------------------------------------------
def _batch_zip() -> bytes:
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("inner/blue.png", png_bytes("blue"))
        z.writestr("readme.txt", "not an image")
    return zbuf.getvalue()


def test_batch_page_files_zip_references_and_bad_files():
    at = start(BATCH)
    at.file_uploader(key="batch.files").set_value(
        [
            ("red.png", png_bytes("red"), "image/png"),
            ("broken.jpg", b"\xff\xd8\xff garbage", "image/jpeg"),
            ("pack.zip", _batch_zip(), "application/zip"),
        ]
    ).run()
    at.text_area(key="batch.opt.refs").input("red.png: a red square | a big red square\nblue: a blue square").run()
    at.button(key="batch.run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert set(table["file"]) == {"red.png", "broken.jpg", "pack.zip/inner/blue.png", "pack.zip/readme.txt"}
    ok = table[~table["caption"].str.startswith("✕")]
    assert set(ok["file"]) == {"red.png", "pack.zip/inner/blue.png"}
    failed = table[table["caption"].str.startswith("✕")]
    assert failed["note"].str.len().gt(10).all() and failed["thumbnail"].str.startswith("data:image/svg").all()
    assert (failed["confidence"] == "").all()  # a blank, not "None"
    assert ok["thumbnail"].str.startswith("data:image/png;base64,").all()
    assert ok["BLEU-4"].notna().all() and "matches a reference" in table.columns
    warning = at.warning[0].value
    assert "broken" in warning and "readme" in warning and "2 of 4" in warning
    assert [m.label for m in at.metric] == ["BLEU-4", "CIDEr-D", "Images with references"]
    assert at.metric[2].value == "2"
    assert at.get("download_button")


def test_batch_counts_leave_failures_out():
    at = start(BATCH)
    files = [(f"ok{i}.png", png_bytes("red"), "image/png") for i in range(4)]
    files += [(f"bad{i}.png", b"\x89PNG broken", "image/png") for i in range(4)]
    at.file_uploader(key="batch.files").set_value(files).run()
    at.button(key="batch.run").click().run()
    assert at.button(key="batch.run").label == "4 images captioned, 4 failed"
    assert any(c.value.startswith("4 images captioned in ") for c in at.main.caption)
    at.file_uploader(key="batch.files").set_value(files[4:]).run()  # none can be read: nothing to caption
    assert at.button(key="batch.run").label == "0 images captioned, 4 failed"
    assert not at.dataframe and not at.get("download_button")  # nothing captioned: no table of Nones, no CSV
    assert "4 of 4 files got no caption" in at.warning[0].value


@pytest.mark.skipif(not HAS_BUILTIN, reason="the built-in model's calibration is needed")
def test_batch_out_of_world_notes_judge_the_images_not_the_settings():
    at = start()
    at.selectbox(key="dec.strategy").set_value("beam").run()
    at.slider(key="dec.num_beams").set_value(16).run()
    at.slider(key="dec.no_repeat_ngram_size").set_value(1).run()
    at.switch_page(BATCH).run()
    at.checkbox(key="batch.opt.examples").check().run()  # scenes of the model's world
    at.button(key="batch.run").click().run()
    table = at.dataframe[0].value
    assert not table["note"].str.contains("outside").any()
    unsure = table[table["note"].str.contains("unsure")]
    assert unsure["note"].str.contains("no-repeat n-gram size 1").all()


def test_batch_keeps_its_files_and_rows_across_page_switches():
    at = start(BATCH)
    files = [(f"scene_{i:02d}.png", png_bytes(c), "image/png") for i, c in enumerate(("red", "blue", "green"))]
    at.file_uploader(key="batch.files").set_value(files).run()
    at.text_area(key="batch.opt.refs").input("scene_00.png: a red square").run()
    at.button(key="batch.run").click().run()
    before = at.dataframe[0].value
    at.switch_page(CAPTION).run()
    at.switch_page(BATCH).run()
    assert not at.exception and not at.warning  # no "Reference line 1 names 'scene_00.png', which is not in the batch"
    assert list(at.dataframe[0].value["file"]) == list(before["file"])
    assert at.button(key="batch.run").disabled and "3 images captioned" in at.button(key="batch.run").label
    assert any("Kept from your last visit: 3 files" in c.value for c in at.main.caption)
    at.button(key="batch.forget").click().run()
    assert not at.dataframe


def test_batch_results_go_when_the_files_go():
    at = start(BATCH)
    at.file_uploader(key="batch.files").set_value([("red.png", png_bytes("red"), "image/png")]).run()
    at.button(key="batch.run").click().run()
    assert len(at.dataframe[0].value) == 1 and at.get("download_button")
    at.file_uploader(key="batch.files").set_value(None).run()
    assert not at.dataframe and not at.get("download_button")
    assert at.button(key="batch.run").disabled


def test_batch_reference_problems_are_named_and_the_rest_still_count():
    at = start(BATCH)
    at.file_uploader(key="batch.files").set_value(
        [("red.png", png_bytes("red"), "image/png"), ("blue.png", png_bytes("blue"), "image/png")]
    ).run()
    at.text_area(key="batch.opt.refs").input(
        "red.png: a red square\nthis line is broken\nghost.png: a ghost\nblue: a blue square"
    ).run()
    at.button(key="batch.run").click().run()
    assert not at.exception and not at.error
    warning = at.warning[0].value
    assert "Reference line 2" in warning and "skipped" in warning
    assert "Reference line 3 names 'ghost.png', which is not in the batch." in __import__("html").unescape(warning)
    assert at.metric[2].value == "2"  # the malformed line did not remove the others' metrics


def test_batch_uses_the_caption_pages_settings():
    at = start()
    at.selectbox(key="dec.strategy").set_value("beam").run()
    at.slider(key="dec.num_beams").set_value(3).run()
    at.slider(key="dec.max_new_tokens").set_value(2).run()
    at.switch_page(BATCH).run()
    assert "beam (3), up to 2 tokens" in html.unescape(" ".join(c.value for c in at.main.caption))
    at.checkbox(key="batch.opt.examples").check().run()
    at.button(key="batch.run").click().run()
    table = at.dataframe[0].value
    assert len(table) == len(image.gallery())
    assert all(len(c.replace(" ✂", "").split()) <= 2 for c in table["caption"])


def test_batch_rows_are_kept_under_the_batch_commands_run_key():
    """A finished row is "captioned with these settings" by the batch command's own rule (its run key: the
    model's weights and the settings, and the file's name and bytes), so a model the cache reloads keeps them."""
    from captioner.batch.rows import done_key

    at = start(BATCH)
    at.checkbox(key=keys.BATCH_EXAMPLES).check().run()
    at.button(key=keys.BATCH_RUN).click().run()
    done = at.session_state[keys.BATCH_DONE]
    n = len(image.gallery())
    assert len(done) == n and len({row.run_key for row in done.values()}) == 1
    assert all(key == f"{row.run_key}|{done_key(row.path, row.sha256).hex()}" for key, row in done.items())
    ui_model.model_cache()[1].clear()  # the model is handed out anew (another load key), its weights the same
    at.run()
    assert at.button(key=keys.BATCH_RUN).label == f"{n} images captioned" and len(at.dataframe[0].value) == n


def test_stopped_batch_keeps_its_rows_and_offers_the_rest(monkeypatch):
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    real = ui_batch.caption_items
    calls = []

    def stops_after_one_chunk(model, items, config, **kwargs):
        calls.append(len(items))
        if len(calls) == 2:
            raise StopException()  # what a click on Stop does to the run: it ends mid-batch
        return real(model, items, config, **kwargs)

    monkeypatch.setattr(ui_batch, "caption_items", stops_after_one_chunk)
    monkeypatch.setattr(ui_batch, "DEFAULT_BATCH_SIZE", 2)
    at = start(BATCH)
    at.checkbox(key="batch.opt.examples").check().run()
    at.button(key="batch.run").click().run()
    at.run()  # the run the Stop click starts
    n = len(image.gallery())
    assert not at.exception and calls == [2, 2]
    assert f"2 of {n} images are captioned" in at.info[0].value
    assert len(at.dataframe[0].value) == 2
    assert at.button(key="batch.run").label == f"Caption the other {n - 2} images"
    monkeypatch.setattr(ui_batch, "caption_items", real)
    at.button(key="batch.run").click().run()
    assert len(at.dataframe[0].value) == n and not at.info


def test_batch_inputs_name_bad_archives_as_error_rows():
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("a.png", png_bytes())
        z.writestr("__MACOSX/._a.png", b"junk")
    files = [("x.png", b"1"), ("fake.zip", b"not a zip"), ("good.zip", good.getvalue())]
    items, problems = ui_batch.batch_inputs(files, [])
    assert [item.name for item in items] == ["x.png", "good.zip/a.png"]
    assert [(p.path, p.status, "ZIP" in p.error) for p in problems] == [("fake.zip", "error", True)]


# -- models -------------------------------------------------------------------------------------
def test_model_that_fails_to_load_keeps_the_old_one(tmp_path):
    at = start()
    caption_before = caption_record(at)["caption"]
    bad = tmp_path / "captioner.pt"
    bad.write_bytes(b"not a checkpoint")
    at.radio(key="model.kind").set_value("Local path").run()
    at.text_input(key="model.path").input(str(bad)).run()
    at.button(key="model.load").click().run()
    assert not at.exception
    errors = html.unescape(" ".join(e.value for e in at.sidebar.error))
    assert "Could not load" in errors and "keeps using the default model" in errors
    assert at.session_state["model_spec"] == DEFAULT_SPEC
    # the picker keeps what was typed, to fix in place; the sidebar says which model is in use
    assert at.radio(key="model.kind").value == "Local path" and at.text_input(key="model.path").value == str(bad)
    assert any(c.value.startswith("In use: ") for c in at.sidebar.caption)
    assert caption_record(at)["caption"] == caption_before


def test_unknown_hub_model_one_message_and_the_picker_keeps_the_typed_id():
    at = start()
    at.radio(key="model.kind").set_value("Hugging Face hub").run()
    at.text_input(key="model.hub").input("nobody-here/no-such-captioner").run()
    at.button(key="model.load").click().run()
    assert not at.exception
    errors = [html.unescape(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].count("keeps using") == 1
    assert errors[0].count("nobody-here/no-such-captioner") == 1  # the loader's sentence names it: not said twice
    assert at.radio(key="model.kind").value == "Hugging Face hub"
    assert at.session_state["model.hub"] == "nobody-here/no-such-captioner"  # kept, to fix a typo
    assert at.metric  # the page still captions with the model it had


@pytest.mark.parametrize(
    "kind, key, text",
    [
        ("Local path", "model.path", "/tmp/" + "very-long-folder-name/" * 140 + "captioner.pt"),  # 3000+ characters
        ("Hugging Face hub", "model.hub", "not a/valid id!!"),
    ],
)
def test_model_text_that_is_neither_a_path_nor_a_hub_id_gets_one_short_line(kind, key, text):
    at = start()
    at.radio(key="model.kind").set_value(kind).run()
    at.text_input(key=key).input(text).run()
    at.button(key="model.load").click().run()
    assert not at.exception
    errors = [html.unescape(e.value) for e in at.sidebar.error]
    assert len(errors) == 1 and len(errors[0]) < 300 and "\n" not in errors[0]
    assert "is not a path that exists, nor a valid Hugging Face hub id" in errors[0]
    assert "Errno" not in errors[0] and "No such file" not in errors[0]
    assert errors[0].count(text[:20]) == 1 and (len(text) < 60 or text not in errors[0])


def test_switching_model_resets_controls_to_its_defaults(tiny_hf_dir):
    at = start()
    at.slider(key="dec.max_new_tokens").set_value(2).run()
    at.radio(key="model.kind").set_value("Local path").run()
    at.text_input(key="model.path").input(str(tiny_hf_dir)).run()
    at.button(key="model.load").click().run()
    assert not at.exception and not at.error
    assert "hf-vision-encoder-decoder" in html.unescape(" ".join(c.value for c in at.sidebar.caption))
    assert at.slider(key="dec.max_new_tokens").value != 2
    assert at.radio(key="model.kind").value == "Local path"
    assert dict(at.query_params)["model"] == str(tiny_hf_dir)
    at.switch_page(EXPLAIN).run()
    assert not at.exception and not at.error and at.radio(key="xpl.word")


def test_a_default_model_that_fails_falls_back_to_the_builtin_or_says_so(monkeypatch, tmp_path, fresh_caches):
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

    monkeypatch.setattr(ui_model, "decode", broken)
    at = upload(start(), "pink.png", png_bytes("pink"))
    assert not at.exception
    assert any("could not be decoded (RuntimeError)" in html.unescape(e.value) for e in at.error)
    assert not any("internal detail" in e.value for e in at.error)


def test_sessions_share_one_model_safely(tiny_visiongpt2_dir):
    """Several threads (sessions) decoding on one LoadedModel get what one thread alone gets."""
    import threading

    from captioner.config import DecodingConfig
    from captioner.loading import load_captioner

    lm = ui_model.LoadedModel(load_captioner(str(tiny_visiongpt2_dir)), "x", "x#1", threading.Lock())
    images = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue", "white")]
    configs = [
        DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=8),
        DecodingConfig(strategy="sample", num_return_sequences=3, max_new_tokens=8),
    ]
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


def test_every_corpus_image_through_the_upload(tmp_path):
    """The hostile-image corpus through the upload widget: a caption, or the case's message; never an exception."""
    from tests.corpus import build_image_corpus

    at = start()
    # The uploader itself only takes these extensions; other files never reach the app.
    cases = [c for c in build_image_corpus(tmp_path) if c.filename.lower().endswith(tuple("." + t for t in image.IMAGE_TYPES))]
    assert len(cases) >= 30
    for case in cases:
        upload(at, case.filename, case.data(), "application/octet-stream")
        assert not at.exception, (case.name, at.exception)
        errors = [e.value for e in at.error]
        if case.expected == "ok":
            assert not errors, (case.name, errors)
            assert sidebar_image_caption(at).startswith(case.filename), case.name
        else:
            assert len(errors) == 1 and not case.error_problems(errors[0]), (case.name, errors)


# -- names the user chose are text, never Markdown ------------------------------------------------
TRACKER = "![x](https://host.invalid/track.png)"


def _rendered_markdown(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer."""
    texts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title")
        for e in at.get(kind)
    ]
    texts += [c for image in at.image for c in image.captions]
    return texts


def test_a_file_name_is_shown_as_text_not_markdown(monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    progress_texts = []
    real = DeltaGenerator.progress

    def recording(self, value, text=None):
        progress_texts.append(text)
        return real(self, value, text=text)

    monkeypatch.setattr(DeltaGenerator, "progress", recording)
    name = TRACKER + ".png"
    at = upload(start(), name, png_bytes("orange"))
    assert sidebar_image_caption(at).replace("\u2060", "").startswith(name)  # shown as the name it is
    at.switch_page(BATCH).run()
    at.file_uploader(key="batch.files").set_value(
        [(name, png_bytes("red"), "image/png"), (TRACKER + ".jpg", b"broken", "image/jpeg")]
    ).run()
    at.button(key="batch.run").click().run()
    texts = _rendered_markdown(at) + [t for t in progress_texts if t]
    assert any("track" in t for t in progress_texts if t)
    assert all("](" not in t and "![" not in t for t in texts), [t for t in texts if "](" in t]
    assert not any("https://" in html.unescape(t) for t in texts)  # no bare URL for Markdown to make a link of


def test_a_link_with_an_uploaded_image_says_it_could_not_travel():
    at = upload(start(), "mine.png", png_bytes("orange"))
    params = {k: v for k, v in at.query_params.items()}
    assert params.get(keys.UPLOAD_PARAM) == ["1"] or params.get(keys.UPLOAD_PARAM) == "1"
    opened = start(params={k: (v[0] if isinstance(v, list) else v) for k, v in params.items()})
    said = html.unescape(" ".join(i.value for i in opened.main.info))
    assert "does not travel in a link" in said and image.gallery()[0].name in said
    assert sidebar_image_caption(opened).startswith(image.gallery()[0].name)


def test_explain_keeps_the_chosen_word_when_its_place_changes():
    at = start(EXPLAIN)
    radio = at.radio(key="xpl.word")
    words = [o.split(". ", 1)[1] for o in radio.options]
    target = len(words) - 1
    at.session_state["xpl.word"] = 0  # as if an earlier caption had this word first
    at.session_state["xpl.word.text"] = words[target]
    at.run()
    assert at.radio(key="xpl.word").value == target
    at.session_state["xpl.word.text"] = "no-such-word"
    at.run()
    assert at.radio(key="xpl.word").value == 0


def test_explain_shows_what_the_model_saw_and_the_caption_notes(monkeypatch, fresh_caches):
    at = start(EXPLAIN)
    model = ui_model.shared_model(DEFAULT_SPEC).model
    h, w = model.image_size
    assert any(f"resized to {w}×{h}" in html.unescape(c) for image in at.main.image for c in image.captions)
    monkeypatch.setattr(model, "calibration", {"confidence_threshold": 1.01})
    at.slider(key="xpl.opacity").set_value(0.5).run()
    at.switch_page(CAPTION).run()
    at.slider(key="dec.max_new_tokens").set_value(5).run()
    at.switch_page(EXPLAIN).run()
    assert any(notes.OUT_OF_WORLD_NOTE == w_.value for w_ in at.warning)


def test_a_new_decode_of_a_cached_encode_does_not_show_the_old_encode_time():
    at = start()
    at.slider(key="dec.max_new_tokens").set_value(9).run()
    encode = [m for m in at.metric if m.label == "Encode"][0]
    assert encode.value == "cached"
    assert not any("from the cache" in c.value for c in at.main.caption)  # decoding ran now
