"""The beam tree: its returned leaves are the returned beams exactly, num_beams nodes are kept at every
step the search goes on, scores before and after the length penalty; in the JSON export; as a figure."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.app.beam_tree import beam_tree_figure, returned_path_nodes
from captioner.config import LENGTH_PENALTY_RANGE, DecodingConfig
from captioner.decoding import caption_image
from captioner.decoding.search import length_factor
from tests.unit.engine_helpers import image, small_vocabulary_model

TREE_CONFIGS = [
    DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=10, num_return_sequences=3),
    DecodingConfig(strategy="beam", num_beams=4, max_new_tokens=8, length_penalty=0.5, early_stopping=True),
    DecodingConfig(strategy="beam", num_beams=5, max_new_tokens=9, length_penalty=2.0, early_stopping="never"),
    DecodingConfig(strategy="group_beam", num_beams=6, num_beam_groups=3, diversity_penalty=1.0, max_new_tokens=8),
]


def check_tree(result) -> None:
    tree, config = result.beam_tree, result.config
    assert [tree.path(n) for n in tree.returned] == [c.token_ids for c in result.beams]
    assert len(set(tree.returned)) == len(result.beams) and all(tree.nodes[n].status == "finished" for n in tree.returned)
    assert [tree.nodes[n].penalized_score for n in tree.returned] == pytest.approx([c.score for c in result.beams], abs=1e-3)
    last_step = max(n.step for n in tree.nodes)
    kept = Counter(n.step for n in tree.nodes if n.status == "kept")  # candidates that ran on after each step
    assert all(kept.get(step, 0) == config.num_beams for step in range(last_step)), kept  # every step the search went on
    for n in tree.nodes[1:]:
        parent = tree.nodes[n.parent]
        assert parent.status in ("start", "kept", "forced") and parent.step == n.step - 1 and parent.group in (0, n.group)
        assert n.penalized_score == pytest.approx(n.score / length_factor(n.step + 1, config.length_penalty), rel=1e-5)
    per_step = {}
    for n in tree.nodes[1:]:
        per_step[n.step, n.group] = per_step.get((n.step, n.group), 0) + 1
    group_size = config.num_beams // (config.num_beam_groups if config.strategy == "group_beam" else 1)
    assert set(per_step.values()) <= {2 * group_size}  # each step ranks 2 x beams candidates per group


@pytest.mark.parametrize("config", TREE_CONFIGS, ids=lambda c: f"{c.strategy}-{c.num_beams}-{c.length_penalty}")
@pytest.mark.parametrize("colour", [(200, 40, 40), (250, 250, 250)])
def test_the_trees_leaves_are_the_returned_beams(pair, config, colour):
    cached, _ = pair
    check_tree(caption_image(cached, image(colour), [config])[0])


def test_only_beam_searches_have_a_tree(pair):
    cached, _ = pair
    for config in (DecodingConfig(), DecodingConfig(strategy="sample"), DecodingConfig(strategy="contrastive", top_k=2)):
        assert caption_image(cached, image(), [config])[0].beam_tree is None


def test_a_forced_prefix_is_one_node_a_step(pair):
    cached, _ = pair
    result = caption_image(cached, image(), [TREE_CONFIGS[0]], prefix=[5, 6])[0]
    tree = result.beam_tree
    assert [(n.step, n.token_id) for n in tree.nodes if n.status == "forced"] == [(0, 5), (1, 6)]
    assert [tree.path(n) for n in tree.returned] == [c.token_ids for c in result.beams]


@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    beams=st.integers(1, 8),
    length_penalty=st.floats(*LENGTH_PENALTY_RANGE),
    early=st.sampled_from([True, False, "never"]),
    max_new=st.integers(1, 16),
    ngram=st.integers(0, 2),
)
def test_tree_invariants_for_any_beam_settings(beams, length_penalty, early, max_new, ngram):
    config = DecodingConfig(
        strategy="beam",
        num_beams=beams,
        length_penalty=length_penalty,
        early_stopping=early,
        max_new_tokens=max_new,
        no_repeat_ngram_size=ngram,
        output_attentions=False,
    )
    result = caption_image(small_vocabulary_model(), image(), [config])[0]
    check_tree(result)
    json.dumps(result.beam_tree.to_dict(), allow_nan=False)


def test_the_figure_highlights_the_returned_beams_and_shows_the_length_penalty(pair):
    cached, _ = pair
    result = caption_image(cached, image(), [TREE_CONFIGS[2]])[0]
    tree = result.beam_tree
    fig = beam_tree_figure(tree)
    markers = [t for t in fig.data if t.mode == "markers+text"]
    assert sum(len(t.x) for t in markers) == len(tree.nodes)
    stars = [s for t in markers for s in t.marker.symbol if s == "star"]
    assert len(stars) == len(result.beams)
    hovers = [h for t in markers for h in t.hovertext]
    assert any("after length penalty 2:" in h for h in hovers)
    [path] = [t for t in fig.data if t.name == "returned beams"]
    assert len([x for x in path.x if x is not None]) == 2 * (len(returned_path_nodes(tree)) - 1)
    without_pruned = beam_tree_figure(tree, show_pruned=False)
    assert sum(len(t.x) for t in without_pruned.data if t.mode == "markers+text") < len(tree.nodes)
