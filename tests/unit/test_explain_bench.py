"""captioner.explain.bench: the words it scores, its deletion curve, its report; the second model it ships."""

from __future__ import annotations

import json

import numpy as np
import pytest

from captioner.explain.bench import NO_ATTENTION_LOSS, deletion_auc, described_words, main
from captioner.explain.occlusion import model_view
from captioner.loading import load_captioner
from captioner.world import example_with_masks, mask_cells, reference_captions


def test_described_words_name_each_kind_at_its_word():
    image, scene, _ = example_with_masks(5)
    text = reference_captions(scene)[0]
    words = text.split()
    found = described_words(text, scene)
    assert found and {kind for _, kind, _ in found} <= {"colour", "shape", "size"}
    for index, kind, objects in found:
        assert objects  # a reference describes objects that are there
        if kind == "colour":
            assert {scene.objects[k].colour for k in objects} == {words[index]}
        if kind == "shape":
            assert all(words[index].startswith(scene.objects[k].shape) for k in objects)


def test_deleting_the_object_first_lowers_the_curve_more_than_deleting_it_last():
    model = load_captioner("builtin")
    image, scene, masks = example_with_masks(21)
    from captioner.decoding import caption_image

    caption = caption_image(model, image)[0].best
    index, _kind, objects = next(w for w in described_words(caption.text, scene) if w[1] == "colour" and w[2])
    covered, share = mask_cells(np.logical_or.reduce([masks[k] for k in objects]), 8, 8)
    first = np.argsort(-share.ravel(), kind="stable")
    last = first[::-1].copy()
    a_first, a_last, a_again = deletion_auc(
        model, model_view(model, image), caption.token_ids, [index], [first, last, first], (8, 8), 8
    )
    assert a_first == a_again and 0 <= a_first < a_last


@pytest.mark.slow
def test_the_bench_writes_its_report(tmp_path):
    out = main(
        [
            "--scenes",
            "1",
            "--steps",
            "2",
            "--methods",
            "attention,occlusion",
            "--models",
            "builtin",
            "--renderers",
            "second",
            "--write",
            str(tmp_path / "explain.md"),
            "--json",
            str(tmp_path / "explain.json"),
        ]
    )
    text = (tmp_path / "explain.md").read_text()
    assert "## builtin, second renderer" in text and "| occlusion |" in text and "What the figures show" in text
    rows = json.loads((tmp_path / "explain.json").read_text())["summary"]["builtin"]["second"]
    assert set(rows) == {"attention", "occlusion", "random"} and out["summary"]["builtin"]["second"] == rows
    assert 0 <= rows["attention"]["pointing"] <= 1 and 0 <= rows["random"]["energy"] <= 1
    merged = main(["--models", "", "--merge", str(tmp_path / "explain.json"), "--write", str(tmp_path / "merged.md")])
    assert merged["summary"] == out["summary"] and merged["meta"]["grid"] == out["meta"]["grid"] != ""
    assert "## builtin, second renderer" in (tmp_path / "merged.md").read_text()


def test_the_second_model_is_shipped_at_the_built_in_size_and_not_offered():
    """The model trained without the attention loss: same configuration as the built-in one, weights only."""
    builtin = json.loads((NO_ATTENTION_LOSS.parents[2] / "builtin" / "config.json").read_text())
    second = json.loads((NO_ATTENTION_LOSS / "config.json").read_text())
    assert second == builtin
    assert {p.name for p in NO_ATTENTION_LOSS.iterdir()} <= {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    model = load_captioner(str(NO_ATTENTION_LOSS))
    assert model.grid == (8, 8) and model.info.num_parameters == load_captioner("builtin").info.num_parameters
