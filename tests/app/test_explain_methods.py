"""AppTests of the Explain page's methods (picker, trust line, maps, unsupported flag, URL) and of
"Hide a region" (cells of a grid blanked, the new caption beside the old)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from captioner.app.ui import explain_methods, hide_view, keys
from captioner.app.trust import TRUST, trust_line
from captioner.explain import METHODS
from tests.app.test_app import EXPLAIN, app_env, fresh_caches, start  # noqa: F401  (fixtures)
from captioner.app.views.heatmap_grid import HeatmapGrid, heatmap_file_name

slow = pytest.mark.slow  # the tests that run the app's pages


def word_count(at) -> int:
    return len(at.radio(key="xpl.word").options)


@slow
@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_selectable_and_draws_a_map_per_word(method):
    at = start(EXPLAIN)
    assert at.radio(key="xpl.method").value == "attention"  # raw attention stays the default
    at.radio(key="xpl.method").set_value(method).run()
    assert not at.exception and not at.error
    assert trust_line(method) in " ".join(c.value for c in at.caption)  # the trust line beside the picker
    # one overlay per word, the image the model saw, the hide-a-region grid
    assert word_count(at) >= 1 and len(at.main.image) == word_count(at) + 2
    assert at.selectbox(key="xpl.layer").disabled == (method != "attention")
    assert at.query_params.get("method", "attention") == method  # the method is in the URL
    figure = json.loads(at.get("plotly_chart")[1].proto.spec)
    scale = [t for t in figure["data"] if t["type"] == "scatter"][0]["marker"]["colorbar"]["title"]["text"]
    assert scale == ("attention" if method == "attention" else "evidence")  # the scale names what it measures
    at.slider(key="xpl.opacity").set_value(0.3).run()  # a rerun takes the maps from the cache
    assert not at.exception and not at.error and len(at.main.image) == word_count(at) + 2
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("PNG" in label for label in labels) and any("JSON" in label for label in labels)


@slow
def test_a_link_restores_the_method_and_a_bad_one_is_one_note():
    at = start(EXPLAIN, params={"method": "gradcam"})
    assert at.radio(key="xpl.method").value == "gradcam" and at.query_params["method"] == "gradcam"
    bad = start(EXPLAIN, params={"method": "magic"})
    assert bad.radio(key="xpl.method").value == "attention" and "method" not in bad.query_params
    assert any("method='magic' is not one of" in note.value for note in bad.info)


@slow
def test_the_unsupported_flag_names_the_words_the_runtime_calls_unsupported(monkeypatch, fresh_caches):  # noqa: F811
    real = explain_methods.explain

    def first_from_text_second_spread(*args, **kwargs):
        result = real(*args, **kwargs)
        words = [
            dataclasses.replace(w, supported=i > 1, whole_image_drop=[0.0, 1.0][i] if i < 2 else w.whole_image_drop)
            for i, w in enumerate(result.words)
        ]
        return dataclasses.replace(result, words=words)

    monkeypatch.setattr(explain_methods, "explain", first_from_text_second_spread)
    at = start(EXPLAIN)
    assert not [w for w in at.warning if "Not supported by the image" in w.value]
    at.radio(key="xpl.method").set_value("occlusion").run()
    [flag] = [w.value for w in at.warning if "Not supported by the image" in w.value]
    [together] = [i.value for i in at.info if "Carried by several regions at once" in i.value]
    first, second = (o.split(". ", 1)[1] for o in at.radio(key="xpl.word").options[:2])
    assert f"“{first}”" in flag and flag.count("“") == 1
    assert f"“{second}”" in together and together.count("“") == 1


@slow
def test_hiding_no_cell_changes_nothing_and_hiding_cells_shows_both_captions():
    at = start(EXPLAIN)
    first_row = at.button_group(key=keys.HIDE_ROW.format(0))
    assert all(not at.button_group(key=keys.HIDE_ROW.format(r)).value for r in range(len(at.button_group)))
    assert not [m for m in at.markdown if m.value == "**With the cells hidden**"]
    at.radio(key=keys.HIDE_FILL).set_value("blur")
    first_row.set_value([0, 1]).run()
    at.button_group(key=keys.HIDE_ROW.format(1)).set_value([len(first_row.options)]).run()  # the 2nd row's 1st
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown if m.value in ("**Before**", "**With the cells hidden**")] == [
        "**Before**",
        "**With the cells hidden**",
    ]
    assert any("3 cells hidden (blur)" in c for image in at.main.image for c in image.captions)


# -- the pieces, without the app ------------------------------------------------------------------
def test_every_method_has_one_trust_line_with_its_measured_pointing():
    assert set(TRUST) == set(METHODS)
    assert all("%" in line and "deletion area" in line for line in TRUST.values())


def test_the_png_figure_and_its_file_name_carry_the_method():
    maps = [("red", np.full((2, 2), 0.25))]
    from PIL import Image

    grid = HeatmapGrid(Image.new("RGB", (8, 8)), maps, "a red", method="occlusion")
    assert grid.title_lines[-1] == "method: occlusion"
    assert heatmap_file_name(0, 0, "occlusion") == "heatmaps-occlusion.png"
    assert "cross-attention" in HeatmapGrid(Image.new("RGB", (8, 8)), maps).title_lines[-1]


def test_marked_words_highlight_exactly_the_changed_ones():
    out = hide_view.marked_words(["a", "red", "<ball>"], [False, True, False])
    assert out.count("<mark") == 1 and ">red</mark>" in out and "&lt;ball&gt;" in out
