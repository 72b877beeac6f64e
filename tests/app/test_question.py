"""AppTests of the questions a user can ask a caption: force a word on Explain (and its link), the beam
tree on Caption, and a Compare row for each new decoding method."""

from __future__ import annotations

import json

import pytest

from captioner.app.ui import keys
from tests.app.test_app import CAPTION, COMPARE, EXPLAIN, app_env, start  # noqa: F401  (app_env: the fixture)

pytestmark = pytest.mark.slow  # each test runs the app's pages


def forced_markdown(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Forced:")]


def test_force_an_alternative_on_the_explain_page():
    at = start(EXPLAIN)
    assert not forced_markdown(at)
    at.selectbox(key="xpl.force_step").set_value(1).run()
    alternative = at.selectbox(key="xpl.force_alt").value
    at.button(key="question.force").click().run()
    assert not at.exception and not at.error
    prefix = at.session_state[keys.PREFIX]
    ids = [int(i) for i in prefix.split(",")]
    assert len(ids) == 2 and ids[1] == alternative
    assert len(forced_markdown(at)) == 1 and "forced" in " ".join(c.value for c in at.caption)
    assert at.query_params["prefix"] == prefix  # the link carries the question
    at.button(key="question.clear").click().run()
    assert not forced_markdown(at) and "prefix" not in at.query_params


def test_typed_words_are_forced_and_unknown_ones_are_one_line():
    at = start(EXPLAIN)
    at.text_input(key="xpl.force_text").input("elephant")
    at.button(key="question.force").click().run()
    assert not at.exception and len(at.error) == 1 and "does not know: 'elephant'" in at.error[0].value
    assert not forced_markdown(at)


@pytest.mark.parametrize("raw,ok", [("2,5", True), ("x,y", False), ("1" + ",1" * 300, False)])
def test_a_shared_link_restores_a_forced_prefix(raw, ok):
    at = start(EXPLAIN, params={"prefix": raw})
    assert not at.exception
    if ok:
        assert at.session_state[keys.PREFIX] == raw and len(forced_markdown(at)) == 1
        assert at.query_params["prefix"] == raw
    else:
        assert not forced_markdown(at) and "prefix" not in at.query_params
        assert any("is not a list of token ids" in note.value for note in at.info)


def test_the_beam_tree_opens_on_the_caption_page_for_beam_search():
    greedy = start(CAPTION)
    assert not any("beam tree" in e.label for e in greedy.expander)
    at = start(CAPTION, params={"strategy": "beam", "num_beams": "3"})
    [tree] = [e for e in at.expander if "beam tree" in e.label]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    stars = [s for chart in charts for t in chart["data"] for s in (t.get("marker", {}).get("symbol") or []) if s == "star"]
    assert len(stars) == 3  # the returned beams' last tokens
    at.toggle(key="tree.pruned").set_value(False).run()
    assert not at.exception


@pytest.mark.parametrize(
    "strategy,sliders",
    [
        ("group_beam", {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0}),
        ("contrastive", {"top_k": 4, "penalty_alpha": 0.6}),
        ("sample", {"min_p": 0.1}),
        ("sample", {"typical_p": 0.8}),
        ("sample", {"epsilon_cutoff": 0.001}),
        ("sample", {"eta_cutoff": 0.001}),
    ],
)
def test_a_compare_row_for_each_new_method(strategy, sliders):
    at = start(COMPARE)
    at.text_input(key="cmp.new.label").input(f"mine {strategy}")
    at.selectbox(key="cmp.new.strategy").set_value(strategy).run()
    for name, value in sliders.items():
        assert not at.slider(key=f"cmp.new.{name}").disabled
        at.slider(key=f"cmp.new.{name}").set_value(value)
    at.button(key="compare.add").click().run()
    assert not at.exception and not at.error
    table = at.table[0].value
    assert list(table["strategy"])[-1] == f"mine {strategy}"
    assert at.query_params.get("compare_add")  # the row is in the link
