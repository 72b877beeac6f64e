"""The Models page through `AppTest`: two models on one image, eviction under a small budget, a failed load, the URL."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from captioner.app import model_compare
from captioner.loading import load_captioner
from captioner.models.cache import BUDGET_ENV, model_bytes
from tests.app.test_app import APP, HAS_BUILTIN

MODELS = "app_pages/models.py"
pytestmark = pytest.mark.skipif(not HAS_BUILTIN, reason="the built-in model is not shipped in this checkout")


@pytest.fixture(autouse=True)
def app_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CAPTIONER_MODEL", "builtin")
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    st.cache_resource.clear()  # the model cache reads its budget when it is made
    yield
    st.cache_resource.clear()


def open_models(specs: list[str], params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.switch_page(MODELS)
    at.run()
    at.text_area(key="mdl.specs").set_value("\n".join(specs)).run()
    assert not at.exception, at.exception
    return at


def test_two_models_side_by_side_on_one_image(tiny_visiongpt2_dir):
    file = str(tiny_visiongpt2_dir / "captioner.pt")
    at = open_models(["builtin", file])
    assert not at.error, [e.value for e in at.error]
    table = at.table[0].value
    assert list(table["model"]) == ["builtin", file]
    assert list(table["kind"]) == ["built-in", "checkpoint file"]
    builtin = load_captioner("builtin")
    # the built-in model's caption is what it says alone with the same settings (greedy, 24 tokens)
    from captioner.decoding import decode, encode_image

    image = at.session_state["image"].image
    config, _ = model_compare.config_for(builtin, model_compare.SHARED_DEFAULTS)
    alone = decode(builtin, encode_image(builtin, image), [config])[0].best.text
    assert table["caption"][0].rstrip(" ✂") == alone
    assert all(0 <= c <= 1 for c in table["confidence"])
    assert table["out of world"][0] in ("yes", "no") and table["out of world"][1] == ""  # only the built-in is calibrated
    assert len(at.get("plotly_chart")) == 2
    assert at.query_params["models"] == ["builtin", file]


def test_each_models_own_defaults_and_the_switch_in_the_url(tiny_visiongpt2_dir, tiny_hf_dir):
    at = open_models(["builtin", str(tiny_hf_dir)])
    at.toggle(key="mdl.same").set_value(False).run()
    assert not at.exception
    assert at.query_params[model_compare.SETTINGS_PARAM] in (model_compare.OWN, [model_compare.OWN])
    link = {"models": ["builtin", str(tiny_hf_dir)], model_compare.SETTINGS_PARAM: model_compare.OWN}
    opened = AppTest.from_file(APP, default_timeout=180)
    for k, v in link.items():
        opened.query_params[k] = v
    opened.switch_page(MODELS)
    opened.run()
    assert not opened.exception
    assert opened.session_state["mdl.specs"] == f"builtin\n{tiny_hf_dir}"
    assert opened.session_state["mdl.same"] is False
    assert len(opened.get("plotly_chart")) == 2


def test_a_model_that_fails_to_load_is_one_line_in_its_column(tmp_path):
    missing = str(tmp_path / "nowhere" / "captioner.pt")
    at = open_models(["builtin", missing])
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert missing[:20] in errors[0] and missing[-15:] in errors[0]  # named by its ends (model_text.load_error_line)
    assert "is not a path that exists" in errors[0]
    assert len(at.get("plotly_chart")) == 1  # the other model still shows
    table = at.table[0].value
    assert table["error"][1] == errors[0] and table["error"][0] == ""


def test_eviction_under_a_small_budget_is_a_note(monkeypatch, tiny_visiongpt2_dir, tiny_hf_dir):
    sizes = [model_bytes(load_captioner(s)) for s in ("builtin", str(tiny_hf_dir))]
    # the sidebar's default model (the built-in one) and one more fit; a third model evicts the oldest
    monkeypatch.setenv(BUDGET_ENV, str((sizes[0] + max(sizes) + 1000) / 1e6))
    at = open_models(["builtin", str(tiny_hf_dir)])
    assert not at.exception and not at.error, [e.value for e in at.error]
    notes = [i.value for i in at.info if "Unloaded" in i.value]
    assert notes and "least recently used" in notes[0] and "model budget" in notes[0]
    assert len(at.get("plotly_chart")) == 2


def test_a_model_larger_than_the_budget_gets_one_line(monkeypatch, tiny_hf_dir):
    monkeypatch.setenv(BUDGET_ENV, "0.01")  # 10 kB: nothing fits, not even the sidebar's model
    at = open_models(["builtin", str(tiny_hf_dir)])
    errors = [e.value for e in at.error]
    assert any(str(tiny_hf_dir) in e and "model budget" in e and BUDGET_ENV in e for e in errors), errors
    assert all("\n" not in e for e in errors)


@pytest.mark.parametrize(
    "text, expected", [("builtin\n a \n\nbuiltin,b", ["builtin", "a", "b"]), ("1\n2\n3\n4\n5", ["1", "2", "3", "4"])]
)
def test_parse_specs(text, expected):
    specs, notes = model_compare.parse_specs(text)
    assert specs == expected
    assert bool(notes) == (len(expected) == 4)
