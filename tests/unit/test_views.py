"""The app's non-Streamlit helpers: tables, figures, heatmaps, distinct-n, references, gallery."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from captioner.app import views
from captioner.config import DecodingConfig
from captioner.decoding import Caption, DecodeResult, caption_image
from captioner.app.gallery import example_images, shipped_examples
from captioner.loading import load_captioner


def make_caption(tokens, probs=None, finished=True, layers=2, heads=3, grid=(4, 4)):
    n = len(tokens)
    probs = probs or [0.5] * n
    probs = [max(p, 1e-6) for p in probs]
    rng = np.random.default_rng(0)
    attn = rng.random((n, layers, heads, *grid)).astype(np.float32)
    return Caption(
        text="".join(tokens).strip(), token_ids=list(range(n)), tokens=list(tokens), token_probs=probs,
        processed_probs=probs, entropies=[1.0] * n,
        alternatives=[[(0, tokens[i], probs[i]), (1, "x", 0.1)] for i in range(n)],
        score=-1.0, logprob=float(np.log(probs).sum()), finished=finished, attentions=attn,
    )


@pytest.fixture(scope="module")
def results(tiny_visiongpt2_dir):
    model = load_captioner(str(tiny_visiongpt2_dir))
    base = DecodingConfig(max_new_tokens=6)
    configs = [
        base.with_(strategy="greedy"),
        base.with_(strategy="beam", num_beams=3),
        base.with_(strategy="sample", top_k=5, num_return_sequences=4),
        base.with_(strategy="sample", top_p=0.8, num_return_sequences=4, label="nucleus"),
    ]
    return model, caption_image(model, Image.new("RGB", (40, 30), "red"), configs)


def test_config_labels():
    assert views.config_label(DecodingConfig()) == "greedy"
    assert views.config_label(DecodingConfig(strategy="beam", num_beams=5)) == "beam (5)"
    assert views.config_label(DecodingConfig(strategy="sample", top_k=40)) == "sample top-k 40"
    assert views.config_label(DecodingConfig(strategy="sample", label="mine")) == "mine"


def test_distinct_n():
    assert views.distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert views.distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert views.distinct_n(["a", ""], 2) == 0.0
    assert views.distinct_n(["A b", "a B"], 2) == 0.5  # case-insensitive


def test_tokens_html_escapes_and_colours():
    cap = make_caption(["<b>", " *x*", "<|endoftext|>"], probs=[0.0, 1.0, 0.5])
    html = views.tokens_html(cap)
    assert "<b>" not in html
    assert "&#60;b&#62;" in html and "&#42;x&#42;" in html
    assert "hsl(0," in html and "hsl(120," in html
    assert views.END_LABEL not in html
    assert views.END_LABEL in views.tokens_html(cap, end_token=True)


def test_tables_and_figures(results):
    model, res = results
    table = views.comparison_table(res)
    assert list(table["strategy"]) == ["greedy", "beam (3)", "sample top-k 5", "nucleus"]
    assert pd.isna(table.loc[0, "distinct-1"]) and 0 < table.loc[2, "distinct-1"] <= 1
    assert (table["length"] <= 6).all()
    samples = views.samples_table(res)
    assert len(samples) == 8 and set(samples["strategy"]) == {"sample top-k 5", "nucleus"}
    beams = views.beams_table(res)
    assert len(beams) >= 1 and (beams["strategy"] == "beam (3)").all()
    assert list(beams["score"]) == sorted(beams["score"], reverse=True)
    fig = views.token_prob_figure(res)
    assert len(fig.data) == 4
    record = views.caption_record(res[0], model.info, "red.png")
    assert record["caption"] == res[0].best.text and record["model"]["family"] == "visiongpt2"
    csv = views.csv_bytes(table).decode()
    assert csv.splitlines()[0].startswith("strategy,caption,log-prob")


def test_explain_helpers(results):
    _, res = results
    cap = res[0].best
    fig = views.step_figure(cap)
    assert len(fig.data) == 2 and list(fig.data[0].y) == cap.token_probs
    alts = views.alternatives_table(cap)
    assert len(alts) == len(cap.tokens) and "#1" in alts.columns


def test_word_groups_bpe_and_word_level():
    assert views.word_groups([" a", " dog", "gy", ".", "<|endoftext|>"], True) == [
        ("a", [0]), ("doggy.", [1, 2, 3])
    ]
    assert views.word_groups(["red", "square", "<|endoftext|>"], True) == [("red", [0]), ("square", [1])]
    assert views.word_groups(["red", "square"], False) == [("red", [0]), ("square", [1])]


def test_aggregate_attention():
    a = np.arange(2 * 3 * 4 * 2 * 2, dtype=np.float32).reshape(2, 3, 4, 2, 2)
    np.testing.assert_allclose(views.aggregate_attention(a), a.mean(axis=(1, 2)))
    np.testing.assert_allclose(views.aggregate_attention(a, 1, views.HEAD_MAX), a[:, 1].max(axis=1))
    np.testing.assert_allclose(views.aggregate_attention(a, views.LAYER_MEAN, 2), a.mean(axis=1)[:, 2])
    with pytest.raises(ValueError):
        views.aggregate_attention(a[0])


def test_heatmaps():
    cap = make_caption([" a", " red", " ball", "<|endoftext|>"])
    maps = views.word_maps(cap, 0, views.HEAD_MEAN)
    assert [w for w, _ in maps] == ["a", "red", "ball"] and maps[0][1].shape == (4, 4)
    image = Image.new("RGB", (60, 40), "white")
    over = views.overlay(image, maps[0][1], side=120)
    assert over.size == (120, 80) and over.mode == "RGB"
    flat = views.overlay(image, np.ones((4, 4)), side=120)  # constant map: no division by zero
    assert flat.size == (120, 80)
    fig = views.heatmap_figure(image, maps, cols=2, tile=100, title="a red ball")
    assert fig.size[0] == 2 * 108 + 8 and fig.size[1] > 2 * 100
    assert views.png_bytes(fig).startswith(b"\x89PNG")
    assert views.word_maps(dataclasses.replace(cap, attentions=None)) == []
    colours = views.colorize(np.array([0.0, 0.5, 1.0]))
    assert colours.shape == (3, 3) and colours.dtype == np.uint8 and colours[2].sum() > colours[0].sum()


def test_references_and_metrics():
    refs = views.parse_references("# comment\n\ncat.jpg: a cat | a grey cat\nsub/dog.png: a dog\ncat.jpg: one more")
    assert refs == {"cat.jpg": ["a cat", "a grey cat", "one more"], "sub/dog.png": ["a dog"]}
    assert views.references_for("archive.zip/cat.jpg", refs) == refs["cat.jpg"]
    assert views.references_for("dog", {"dog": ["x"]}) == ["x"]
    assert views.references_for("other.png", refs) == []
    with pytest.raises(ValueError, match="line 1"):
        views.parse_references("no colon here")
    rows = [
        views.BatchRow("a.png", "a small red square above a cross", references=("a small red square above a cross",)),
        views.BatchRow("b.png", "a big blue circle left of a triangle", references=("a big blue circle left of a triangle", "x")),
        views.BatchRow("c.png", problem="not an image", references=("x",)),
        views.BatchRow("d.png", "no refs"),
    ]
    scores = views.batch_metrics(rows)
    assert scores["images"] == 2 and scores["BLEU-4"] == pytest.approx(1.0) and scores["CIDEr-D"] > 0
    assert views.batch_metrics(rows[2:]) is None
    table = views.batch_table(rows)
    assert list(table["file"]) == ["a.png", "b.png", "c.png", "d.png"] and table.loc[2, "problem"] == "not an image"


def test_thumbnail_uri():
    uri = views.thumbnail_uri(Image.new("RGB", (400, 200), "blue"), side=64)
    assert uri.startswith("data:image/png;base64,")


def test_gallery(tmp_path):
    examples = example_images(3)
    assert len(examples) == 3 and all(e.data.startswith(b"\x89PNG") for e in examples)
    assert all(e.references for e in example_images()), "every shipped example has its captions"
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "two.png")
    (tmp_path / "captions.jsonl").write_text('{"file": "two.png", "references": ["x y"]}\nnot json\n{"file": 3}\n')
    shipped = shipped_examples(tmp_path)
    assert [(e.name, e.references) for e in shipped] == [("one.png", ()), ("two.png", ("x y",))]
