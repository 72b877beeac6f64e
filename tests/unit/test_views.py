"""The app's views (captioner/app/views/): texts, colours, tables, figures, heatmaps; and the gallery."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import plotly.colors as pc
import pytest
from PIL import Image

from captioner.app.gallery import example_images, shipped_examples
from captioner.app.settings import HEAD_MAX, HEAD_MEAN, LAYER_MEAN
from captioner.app.views.batch import batch_table, row_seconds, thumbnail_uri
from captioner.app.views.colours import PROB_LIGHTEN, PROB_SCALE, PROB_SPAN, colorize, prob_color, token_legend_html
from captioner.app.views.compare import (
    beams_table,
    compare_note,
    comparison_table,
    every_caption_table,
    num_tokens,
    samples_table,
)
from captioner.app.views.explain import aggregate_attention, attention_figure, overlay, word_maps
from captioner.app.views.heatmap_grid import (
    HEATMAP_LEGEND,
    HeatmapGrid,
    drawable,
    heatmap_figure,
    heatmap_file_name,
    missing_glyphs,
    pillow_font,
)
from captioner.app.views.help_text import BUILTIN_COLOURS, BUILTIN_NOTE, BUILTIN_RELATIONS, BUILTIN_SHAPES, BUILTIN_SIZES
from captioner.app.views.images import display_image, png_bytes
from captioner.app.views.records import caption_record, comparison_record
from captioner.app.views.tables import csv_bytes, readable
from captioner.app.views.text import END_LABEL, config_label, markdown_escape, score_basis
from captioner.app.views.tokens import alternatives_table, step_figure, token_prob_figure, tokens_html
from captioner.batch.rows import CaptionRow, score_rows
from captioner.config import DecodingConfig
from captioner.decoding import Caption, DecodeResult, caption_image
from captioner.explain.result import word_groups
from captioner.loading import load_captioner


def make_caption(tokens, probs=None, finished=True, layers=2, heads=3, grid=(4, 4)):
    n = len(tokens)
    probs = probs or [0.5] * n
    probs = [max(p, 1e-6) for p in probs]
    rng = np.random.default_rng(0)
    attn = rng.random((n, layers, heads, *grid)).astype(np.float32)
    return Caption(
        text="".join(tokens).strip(),
        token_ids=list(range(n)),
        tokens=list(tokens),
        token_probs=probs,
        processed_probs=probs,
        entropies=[1.0] * n,
        alternatives=[[(0, tokens[i], probs[i]), (1, "x", 0.1)] for i in range(n)],
        score=-1.0,
        logprob=float(np.log(probs).sum()),
        finished=finished,
        attentions=attn,
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


def test_a_configuration_is_labelled_by_its_strategy_or_its_own_label():
    assert config_label(DecodingConfig()) == "greedy"
    assert config_label(DecodingConfig(strategy="beam", num_beams=5)) == "beam (5)"
    assert config_label(DecodingConfig(strategy="sample", top_k=40)) == "sample top-k 40"
    assert config_label(DecodingConfig(strategy="sample", label="mine")) == "mine"


def test_tokens_html_escapes_and_colours():
    cap = make_caption(["<b>", " *x*", "<|endoftext|>"], probs=[0.0, 1.0, 0.5])
    html = tokens_html(cap)
    assert "<b>" not in html
    assert "&#60;b&#62;" in html and "&#42;x&#42;" in html
    red, green = prob_color(0.0), prob_color(1.0)
    assert f"background:{red}" in html and f"background:{green}" in html
    assert END_LABEL not in html
    assert END_LABEL in tokens_html(cap, end_token=True)


def test_the_comparison_table_shows_each_configurations_numbers(results):
    model, res = results
    table = comparison_table(res)
    assert list(table["strategy"]) == ["greedy", "beam (3)", "sample top-k 5", "nucleus"]
    assert pd.isna(table.loc[0, "distinct-1"]) and 0 < table.loc[2, "distinct-1"] <= 1
    assert (table["tokens"] <= 6).all() and list(table["score uses"])[:2] == ["model's own", "model's own"]
    assert "time (s)" not in table.columns  # one batched call: one time, said beside the table
    alone = comparison_table([dataclasses.replace(r, timings={"decode": 0.1 * i}) for i, r in enumerate(res)])
    assert list(alone["time (s)"]) == [0.0, 0.1, 0.2, 0.3]
    samples = samples_table(res)
    assert len(samples) == 8 and set(samples["strategy"]) == {"sample top-k 5", "nucleus"}
    assert list(samples.columns) == ["strategy", "sample", "caption", "log-prob", "score", "tokens"]
    assert list(samples["sample"]) == [1, 2, 3, 4, 1, 2, 3, 4]
    assert list(samples["caption"]) == [c.text for r in res[2:] for c in r.captions]
    beams = beams_table(res)
    assert len(beams) >= 1 and (beams["strategy"] == "beam (3)").all()
    assert list(beams["score"]) == sorted(beams["score"], reverse=True)
    assert list(beams.columns) == ["strategy", "rank", "caption", "score", "log-prob", "tokens", "ended"]
    assert list(beams["rank"]) == list(range(1, len(res[1].beams) + 1)) and list(beams["caption"]) == [
        c.text for c in res[1].beams
    ]
    record = caption_record(res[0], model.info, "red.png")
    assert record["caption"] == res[0].best.text and record["model"]["family"] == "visiongpt2"
    csv = csv_bytes(table).decode()
    assert csv.splitlines()[0].startswith("strategy,caption,log-prob,score,score uses,tokens")


def test_the_step_figure_and_alternatives_table_show_each_steps_ranked_tokens(results):
    _, res = results
    cap = res[0].best
    fig = step_figure(cap)
    assert len(fig.data) == 2 and list(fig.data[0].y) == cap.token_probs
    alts = alternatives_table(cap)
    assert list(alts["step"]) == list(range(1, len(cap.tokens) + 1)) and list(alts["p"]) == [round(p, 4) for p in cap.token_probs]
    ranked = [c for c in alts.columns if c.startswith("#")]
    assert ranked == [f"#{j}" for j in range(1, min(5, len(cap.alternatives[0])) + 1)]
    for _, row in alts.iterrows():  # greedy: the chosen token is the top one, and the others follow in order
        assert row["#1"].rsplit(" (", 1)[0] == row["chosen"]
        shown = [float(row[c].rsplit("(", 1)[1].rstrip(")")) for c in ranked]
        assert shown == sorted(shown, reverse=True) and all(0 <= q <= 1 for q in shown)


def test_word_groups_bpe_and_word_level():
    assert word_groups([" a", " dog", "gy", ".", "<|endoftext|>"], True) == [("a", [0]), ("doggy.", [1, 2, 3])]
    assert word_groups(["red", "square", "<|endoftext|>"], True) == [("red", [0]), ("square", [1])]
    assert word_groups(["red", "square"], False) == [("red", [0]), ("square", [1])]


def test_attention_is_averaged_or_maxed_over_the_chosen_layers_and_heads():
    a = np.arange(2 * 3 * 4 * 2 * 2, dtype=np.float32).reshape(2, 3, 4, 2, 2)
    np.testing.assert_allclose(aggregate_attention(a), a.mean(axis=(1, 2)))
    np.testing.assert_allclose(aggregate_attention(a, 1, HEAD_MAX), a[:, 1].max(axis=1))
    np.testing.assert_allclose(aggregate_attention(a, LAYER_MEAN, 2), a.mean(axis=1)[:, 2])
    with pytest.raises(ValueError):
        aggregate_attention(a[0])


def test_word_heatmaps_overlays_and_their_figure_titles_files_and_colours():
    cap = make_caption([" a", " red", " ball", "<|endoftext|>"])
    maps = word_maps(cap, 0, HEAD_MEAN)
    assert [w for w, _ in maps] == ["a", "red", "ball"] and maps[0][1].shape == (4, 4)
    image = Image.new("RGB", (60, 40), "white")
    over = overlay(image, maps[0][1], side=120)
    assert over.size == (120, 80) and over.mode == "RGB"
    flat = overlay(image, np.ones((4, 4)), side=120)  # constant map: no division by zero
    assert flat.size == (120, 80)
    grid = HeatmapGrid(image, maps, "a red ball", layer=1, head=HEAD_MAX, cols=2, tile=100)
    assert grid.title_lines == ["“a red ball”", "cross-attention: layer 2, max over heads"]
    fig = heatmap_figure(grid)
    assert fig.size[0] == 2 * 108 + 8 and fig.size[1] > 2 * 100
    assert heatmap_file_name(1, HEAD_MAX) == "heatmaps-layer-2-max-over-heads.png"
    assert heatmap_file_name(LAYER_MEAN, 0) == "heatmaps-mean-over-layers-head-1.png"
    assert png_bytes(fig).startswith(b"\x89PNG")
    assert word_maps(dataclasses.replace(cap, attentions=None)) == []
    colours = colorize(np.array([0.0, 0.5, 1.0]))
    assert colours.shape == (3, 3) and colours.dtype == np.uint8 and colours[2].sum() > colours[0].sum()
    inferno = [pc.unlabel_rgb(c) for c in pc.sample_colorscale("Inferno", [0.0, 1.0])]
    assert colours[0].tolist() == [round(v) for v in inferno[0]] and colours[2].tolist() == [round(v) for v in inferno[1]]


def test_batch_table_scores_and_notes():
    rows = [
        CaptionRow("a.png", caption="a small red square above a cross", references=["a small red square above a cross"]),
        CaptionRow(
            "b.png", caption="a big blue circle left of a triangle", references=["a big blue circle left of a triangle", "x"]
        ),
        CaptionRow("c.png", status="error", error="not an image", references=["x"]),
        CaptionRow("d.png", caption="no refs"),
    ]
    rows, scores = score_rows(rows)
    assert scores.images == 2 and scores.bleu4 == pytest.approx(1.0) and scores.cider_d > 0
    assert score_rows(rows[2:])[1] is None
    table = batch_table(rows)
    assert list(table["file"]) == ["a.png", "b.png", "c.png", "d.png"] and table.loc[2, "note"] == "not an image"
    assert list(table["BLEU-4"][:2]) == [1.0, 1.0] and pd.isna(table.loc[3, "BLEU-4"])
    assert list(table["matches a reference"][:2]) == [True, True]
    assert "BLEU-4" not in batch_table(rows[3:]).columns  # no references: no per-image metrics


def test_row_seconds_add_every_stage_and_are_blank_without_timings():
    timed = CaptionRow("a.png", caption="x", timings='{"read": 0.25, "encode": 0.5, "decode": 1.0}')
    assert row_seconds(timed) == pytest.approx(1.75)
    assert row_seconds(CaptionRow("b.png")) is None and row_seconds(CaptionRow("c.png", timings="not json")) is None
    assert list(batch_table([timed, CaptionRow("b.png", caption="y")])["time (s)"][:1]) == [1.75]
    assert pd.isna(batch_table([CaptionRow("b.png", caption="y")]).loc[0, "time (s)"])


def test_colours_come_from_plotly_scales():
    def rgb(text):
        return tuple(int(v) for v in text[4:-1].split(","))

    low, mid, high = (rgb(prob_color(p)) for p in (0.0, 0.5, 1.0))
    assert low[0] > low[1] and high[1] > high[0] and mid[0] > 200 and mid[1] > 200  # red, yellow, green
    scale_low = pc.unlabel_rgb(pc.sample_colorscale(PROB_SCALE, [PROB_SPAN[0]])[0])
    white = (255.0, 255.0, 255.0)
    assert low == tuple(round(v) for v in pc.find_intermediate_color(scale_low, white, PROB_LIGHTEN))
    assert prob_color(float("nan")) == prob_color(0.0)
    assert "linear-gradient" in token_legend_html() and "certain" in token_legend_html()


def test_token_prob_figure_integer_steps_labelled_and_no_line_hidden():
    same = make_caption([" a", " red", " ball", "<|endoftext|>"], probs=[0.5, 0.9, 0.8, 0.99])
    other = make_caption([" a", " blue", " ball", "<|endoftext|>"], probs=[0.5, 0.4, 0.8, 0.99])
    results = [
        DecodeResult(DecodingConfig(label=name), [cap], [cap])
        for name, cap in (("greedy", same), ("beam", same), ("top-k", same), ("top-p", other))
    ]
    fig = token_prob_figure(results)
    assert len(fig.data) == 4
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 3, 4]
    assert fig.layout.xaxis.ticktext[0] == "1<br>a" and fig.layout.xaxis.ticktext[1] == "2<br>red / blue"
    assert fig.layout.xaxis.ticktext[3] == f"4<br>{END_LABEL}"
    xs = [tuple(trace.x) for trace in fig.data]
    assert len(set(xs)) == 4  # identical lines drawn side by side, never on top of each other
    assert all(abs(x - round(x)) <= 0.2 for trace in fig.data for x in trace.x)
    assert len({t.marker.symbol for t in fig.data}) == 4 and len({t.line.dash for t in fig.data}) == 4
    assert list(fig.data[0].customdata) == [1, 2, 3, 4]  # hover says the integer step


def test_the_step_figures_axes_show_one_decimal_and_the_largest_entropy():
    cap = make_caption([" a", " red", "<|endoftext|>"], probs=[0.3, 0.9, 0.99])
    cap = dataclasses.replace(cap, entropies=[2.345, 0.5, 0.01])
    fig = step_figure(cap)
    assert fig.layout.yaxis2.tickformat == ".1f" and fig.layout.yaxis2.range[1] >= 2.345
    assert fig.layout.yaxis.tickformat == ".1f"


def test_score_basis_and_note():
    assert score_basis(DecodingConfig(strategy="greedy")) == "model's own"
    assert score_basis(DecodingConfig(strategy="greedy", top_p=0.5)) == "model's own"  # unused by greedy
    assert score_basis(DecodingConfig(strategy="sample", top_p=0.9)) == "after top-p 0.9"
    assert score_basis(DecodingConfig(strategy="sample", top_k=5, temperature=0.7)) == "after top-k 5, T 0.7"
    assert score_basis(DecodingConfig(strategy="beam", repetition_penalty=1.2)) == "after repetition penalty 1.2"
    assert "tokens ** length penalty (1.5)" in compare_note(1.5)


def test_scores_are_what_the_note_says(results):
    """Score = sum of the log-probs in the distribution used / tokens ** length penalty; for rows whose
    score uses the model's own probabilities, that is log-prob / tokens ** length penalty."""
    _, res = results
    for r in res:
        lp = r.config.length_penalty
        for c in r.beams if r.config.strategy == "beam" else r.captions:
            used = sum(np.log(c.processed_probs)) / num_tokens(c) ** lp
            assert c.score == pytest.approx(used, rel=1e-4, abs=1e-4)
            if score_basis(r.config) == "model's own":
                assert c.score == pytest.approx(c.logprob / num_tokens(c) ** lp, rel=1e-4, abs=1e-4)


def test_every_caption_table_and_the_comparison_record_hold_every_caption(results):
    model, res = results
    every = every_caption_table(res)
    expected = sum(len(r.beams) if r.config.strategy == "beam" else len(r.captions) for r in res)
    assert len(every) == expected and set(every["kind"]) == {"greedy", "beam", "sample"}
    assert every[every["kind"] == "sample"]["caption"].tolist() == [
        c.text for r in res if r.config.strategy == "sample" for c in r.captions
    ]
    record = comparison_record(res, model.info, "red.png")
    assert [c["strategy"] for c in record["configurations"]] == ["greedy", "beam (3)", "sample top-k 5", "nucleus"]
    assert len(record["configurations"][1]["beams"]) == len(res[1].beams)
    assert len(record["configurations"][2]["captions"]) == 4 and "beams" not in record["configurations"][2]


def test_attention_figure_has_a_colour_scale_and_the_opacity():
    amap = np.arange(16, dtype=np.float32).reshape(4, 4) / 120
    fig = attention_figure(Image.new("RGB", (60, 40), "white"), amap, opacity=0.35, title="“red” · layer 1")
    shown = np.asarray(fig.data[0].z, dtype=np.uint8)  # the same overlay as the grid's, at this opacity
    assert (shown == np.asarray(overlay(Image.new("RGB", (60, 40), "white"), amap, 448, 0.35))).all()
    legend = [t for t in fig.data if t.type == "scatter"][0].marker
    assert legend.showscale and legend.colorbar.title.text == "attention"
    assert (legend.cmin, legend.cmax) == pytest.approx((0.0, 15 / 120))
    # rgb() colours: Streamlit's theme would replace the hex #000004 Inferno starts with
    assert legend.colorscale[0] == (0.0, "rgb(0, 0, 4)") and not any(c.startswith("#") for _, c in legend.colorscale)
    hover = [t for t in fig.data if t.type == "heatmap"][0]
    assert hover.dx * 4 == pytest.approx(448) and fig.layout.title.text == "“red” · layer 1"
    base = display_image(Image.new("RGB", (60, 40), "white"), 120)
    assert overlay(Image.new("RGB", (60, 40), "white"), amap, 120, alpha=0.0).tobytes() == base.tobytes()


def test_a_caption_cut_at_the_limit_is_marked_in_its_tokens():
    assert "cut at the limit" in tokens_html(make_caption([" a", " red"], finished=False))


def test_builtin_note_matches_the_world():
    from captioner.world import captions, render

    assert BUILTIN_SHAPES == render.SHAPES
    assert BUILTIN_COLOURS == tuple(render.COLOURS)
    assert BUILTIN_SIZES == render.SIZES
    assert set(BUILTIN_RELATIONS) == set(captions.INVERSE_RELATION)
    assert max(captions.NUMBER_WORDS) == 3 and "1 to 3 objects" in BUILTIN_NOTE


def test_a_thumbnail_is_a_png_data_uri_of_the_right_size_and_colour():
    import base64
    import io

    for size, side, expected in (((400, 200), 64, (64, 32)), ((8, 8), 64, (64, 64))):  # a tiny image is enlarged
        uri = thumbnail_uri(Image.new("RGB", size, "blue"), side=side)
        assert uri.startswith("data:image/png;base64,")
        thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1], validate=True)))
        assert thumb.format == "PNG" and thumb.size == expected and thumb.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_the_gallery_ships_captioned_examples_and_reads_a_folders_captions_file(tmp_path):
    examples = example_images(3)
    assert len(examples) == 3 and all(e.data.startswith(b"\x89PNG") for e in examples)
    assert all(e.references for e in example_images()), "every shipped example has its captions"
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "two.png")
    (tmp_path / "captions.jsonl").write_text('{"file": "two.png", "references": ["x y"]}\nnot json\n{"file": 3}\n')
    shipped = shipped_examples(tmp_path)
    assert [(e.name, e.references) for e in shipped] == [("one.png", ()), ("two.png", ("x y",))]


def test_heatmap_png_text_has_no_missing_glyph_boxes():
    font = pillow_font(13)
    assert missing_glyphs("→ é 中", font) == ["→", "é", "中"]  # what Pillow's own font lacks
    assert not missing_glyphs(HEATMAP_LEGEND, font)
    assert drawable("café → 中", font) == "cafe ? ?" and not missing_glyphs(drawable("naïve ✂", font), font)
    grid = HeatmapGrid(Image.new("RGB", (40, 40)), [("café", np.ones((4, 4)))], "a café → there")
    assert not any(missing_glyphs(drawable(line, pillow_font(18)), pillow_font(18)) for line in grid.title_lines)
    assert heatmap_figure(grid).size[0] > 0


def test_tables_show_names_as_typed_not_as_markdown():
    table = pd.DataFrame({"strategy": ["*md*", "plain"], "log-prob": [-1.23456, None], "ok": [True, False]})
    html_out = readable(table).to_html()
    assert "&amp;#42;md&amp;#42;" in html_out or "&#42;md&#42;" in html_out  # escaped for st.table's Markdown
    assert "-1.235" in html_out and "None" not in html_out and "nan" not in html_out.lower()


def test_the_views_import_no_streamlit_and_no_world():
    """Every views module is plain data in, plain data out: importing them all loads neither Streamlit
    nor the scene world (the pages and the UI draw what they return)."""
    import subprocess
    import sys
    from pathlib import Path

    import captioner.app.views as package

    names = sorted(p.stem for p in Path(package.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert {"text", "tokens", "compare", "explain", "batch"} <= set(names)
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module('captioner.app.views.' + name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit' or m.startswith('captioner.world')))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_one_escape_for_markdown_everywhere():
    """Captions, table cells and names go through the same markdown_escape: specials become entities and
    a URL inside one is never turned into a link."""
    escaped = markdown_escape("see https://x.example/*a*")
    assert "*" not in escaped and "https\u2060&#58;" in escaped
    html_out = tokens_html(make_caption([" https", "://x", "<|endoftext|>"]))
    assert "> https<" in html_out and "&#58;//x" in html_out
    cell = readable(pd.DataFrame({"caption": ["www.x.example"]})).to_html()
    assert "www\u2060" in cell
