"""What the app shows, built from engine results: tables, Plotly figures, heatmap overlays, texts.

No Streamlit here: every function takes `Caption` / `DecodeResult` objects and returns plain data
(pandas frames, Plotly figures, PIL images, strings), so pages stay short and this is unit-tested.
Colours come from Plotly's scales (`plotly.colors`).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any, Container, Sequence

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from captioner.app.settings import HEAD_MAX, HEAD_MEAN, LAYER_MEAN
from captioner.batch.formats import spreadsheet_cell
from captioner.explain.result import word_groups  # one rule for what a word of a caption is
from captioner.batch.rows import CaptionRow
from captioner.config import DecodingConfig
from captioner.decoding import Caption, DecodeResult
from captioner.metrics import exact_match
from captioner.models.base import ModelInfo

END_LABEL = "⟨end⟩"
PROB_SCALE = "RdYlGn"  # token backgrounds: red unlikely, yellow, green certain
PROB_SPAN = (0.1, 0.9)  # the part of the scale used (its darkest ends would hide the text)
PROB_LIGHTEN = 0.5  # mixed with white, so dark text stays readable
HEAT_SCALE = "Inferno"  # attention: dark little, bright most
# The same scale in rgb() form for figures: Streamlit's Plotly theme swaps the hex colours #000001..#000030
# for its own (placeholders), and Inferno starts at #000004, which would come out pink.
HEAT_COLORSCALE = [
    [pos, pc.convert_colors_to_same_type(colour, "rgb")[0][0]] for pos, colour in pc.make_colorscale(pc.sequential.Inferno)
]

# -- texts --------------------------------------------------------------------------------------
HOW_TO_READ = {
    "caption": (
        "Each token of the caption is coloured by the probability the model gave it when it chose it: "
        "red unlikely, yellow unsure, green certain (hover a token for the number). **Confidence** is the "
        "geometric mean of those probabilities. A caption that stopped at *Max new tokens* instead of "
        "ending by itself is marked. The controls on the left start at the model's own settings; greyed "
        "ones do not apply to the chosen strategy."
    ),
    "compare": (
        "Each row decodes the same image another way. **Log-prob** is what the model itself thinks of "
        "the caption: compare rows by it. **Score** is what each strategy ranked its candidates by (see "
        "*score uses*). **Distinct-1/2** are the share of unique words and word pairs among a "
        "strategy's samples: higher means more varied. The chart shows how sure the model was of each "
        "token; lines that coincide are drawn side by side."
    ),
    "explain": (
        "The bars are the probability of the chosen token at each step, the line the entropy of the "
        "model's whole next-token distribution (0 = certain; higher = spread over many tokens). The "
        "heatmaps show cross-attention: how much the decoder's query for a word weighed each image "
        "patch. Bright = most of that word's attention, each map scaled to its own range. Attention "
        "shows where the model looked, not why it chose the word: a bright patch is not proof the "
        "model 'saw' the object there."
    ),
    "batch": (
        "Each file is captioned with the Caption page's settings. With reference captions (one line "
        "per file, or the examples' own), each row gets its BLEU-4 and whether it matches a reference "
        "word for word, and the batch gets corpus BLEU-4 and CIDEr-D (higher is better; 1.0 BLEU-4 is "
        "a perfect match). Files that cannot be used are listed with the reason."
    ),
}

# What the built-in model knows (tests/unit/test_views.py checks it against captioner.world).
BUILTIN_SHAPES = ("circle", "square", "triangle", "star", "cross")
BUILTIN_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "white", "black")
BUILTIN_SIZES = ("small", "big")
BUILTIN_RELATIONS = ("left of", "right of", "above", "below")
BUILTIN_NOTE = (
    "**The built-in model** knows only its own world of rendered scenes: 1 to 3 objects, "
    f"{len(BUILTIN_SHAPES)} shapes ({', '.join(BUILTIN_SHAPES)}), {len(BUILTIN_COLOURS)} colours "
    f"({', '.join(BUILTIN_COLOURS)}), {len(BUILTIN_SIZES)} sizes ({' and '.join(BUILTIN_SIZES)}), "
    f"placed {', '.join(BUILTIN_RELATIONS[:-1])} or {BUILTIN_RELATIONS[-1]} one another. "
    "Pick a scene from the examples in the sidebar to see it at its best."
)
BUILTIN_SHORT = (
    f"The built-in model knows scenes of 1 to 3 objects: {len(BUILTIN_SHAPES)} shapes, {len(BUILTIN_COLOURS)} "
    f"colours, {len(BUILTIN_SIZES)} sizes, {' / '.join(BUILTIN_RELATIONS)}. Try the example images."
)


# -- labels and colours -------------------------------------------------------------------------
def config_label(config: DecodingConfig) -> str:
    """A short name for a decoding configuration: its label, or one made from its settings."""
    if config.label:
        return config.label
    if config.strategy == "greedy":
        return "greedy"
    if config.strategy == "beam":
        return f"beam ({config.num_beams})"
    if config.strategy == "group_beam":
        return f"diverse beam ({config.num_beams} in {config.num_beam_groups}, penalty {config.diversity_penalty:g})"
    if config.strategy == "contrastive":
        return f"contrastive (alpha {config.penalty_alpha:g}, k {config.top_k})"
    return "sample" + (" " + ", ".join(_sampling_parts(config)) if _sampling_parts(config) else "")


def _sampling_parts(config: DecodingConfig) -> list[str]:
    parts = []
    if config.top_k:
        parts.append(f"top-k {config.top_k}")
    if config.top_p < 1:
        parts.append(f"top-p {config.top_p:g}")
    if config.temperature != 1:
        parts.append(f"T {config.temperature:g}")
    for name, value, off in (
        ("min-p", config.min_p, 0),
        ("typical-p", config.typical_p, 1),
        ("epsilon", config.epsilon_cutoff, 0),
        ("eta", config.eta_cutoff, 0),
    ):
        if value != off:
            parts.append(f"{name} {value:g}")
    return parts


def score_basis(config: DecodingConfig) -> str:
    """Which probabilities a configuration's score is made of: the model's own, or which renormalised ones."""
    parts = _sampling_parts(config) if config.strategy == "sample" else []
    if config.repetition_penalty != 1:
        parts.append(f"repetition penalty {config.repetition_penalty:g}")
    if config.no_repeat_ngram_size:
        parts.append(f"no repeated {config.no_repeat_ngram_size}-grams")
    return "after " + ", ".join(parts) if parts else "model's own"


def token_label(token: str) -> str:
    """How a token reads in tables and on heatmaps: trimmed, the end token named."""
    text = token.strip()
    if text in ("<|endoftext|>", "</s>", "[SEP]", "<eos>"):
        return END_LABEL
    return text or repr(token)


def _rgb(colour: str) -> tuple[float, float, float]:
    return pc.unlabel_rgb(pc.convert_colors_to_same_type(colour, "rgb")[0][0])


def prob_color(p: float) -> str:
    """Background colour for a token from Plotly's RdYlGn scale, lightened so dark text stays readable."""
    p = min(max(float(p), 0.0), 1.0) if math.isfinite(p) else 0.0
    lo, hi = PROB_SPAN
    colour = _rgb(pc.sample_colorscale(PROB_SCALE, [lo + (hi - lo) * p])[0])
    r, g, b = pc.find_intermediate_color(colour, (255.0, 255.0, 255.0), PROB_LIGHTEN)
    return f"rgb({round(r)}, {round(g)}, {round(b)})"


def scale_legend_html(scale: str, left: str, right: str, lighten: float = 0.0, span: tuple[float, float] = (0, 1)) -> str:
    """A small horizontal colour bar for (the `span` of) a Plotly scale, with a label at each end."""
    stops = [_rgb(c) for c in pc.sample_colorscale(scale, list(np.linspace(*span, 9)))]
    stops = [pc.find_intermediate_color(c, (255.0, 255.0, 255.0), lighten) for c in stops]
    gradient = ", ".join(f"rgb({round(r)},{round(g)},{round(b)})" for r, g, b in stops)
    return (
        '<div style="display:flex;align-items:center;gap:0.5rem;font-size:0.85rem;opacity:0.75">'
        f"<span>{html.escape(left)}</span>"
        f'<span style="flex:0 1 12rem;height:0.8rem;border-radius:3px;background:linear-gradient(to right, {gradient})"></span>'
        f"<span>{html.escape(right)}</span></div>"
    )


def token_legend_html() -> str:
    return scale_legend_html(PROB_SCALE, "p = 0 (unlikely)", "1 (certain)", PROB_LIGHTEN, PROB_SPAN)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&:])")


def _escape(text: str) -> str:
    """Text safe inside Markdown with HTML: every special character becomes an entity."""
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(1))};", text)


_AUTOLINK = re.compile(r"(?i)(https?|ftp|www)(?=&#58;|&#46;)")


def markdown_escape(text: str) -> str:
    """Plain text for st.markdown (user-supplied names and captions). A word joiner (invisible) after
    "https" or "www" keeps GitHub-flavoured Markdown from turning a URL inside a name into a link."""
    return _AUTOLINK.sub("\\1\u2060", _escape(text))


def shorten(text: str, most: int = 60) -> str:
    """`text` in at most `most` characters: its start and end around an ellipsis when longer."""
    text = " ".join(str(text).split())  # one line
    if len(text) <= most:
        return text
    head = (most - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (most - 1 - head) :]


def tokens_html(caption: Caption, end_token: bool = False) -> str:
    """The caption as HTML spans, each token's background coloured by its probability."""
    spans = []
    for i, (tok, p) in enumerate(zip(caption.tokens, caption.token_probs)):
        is_end = caption.finished and i == len(caption.tokens) - 1
        if is_end and not end_token:
            continue
        text = END_LABEL if is_end else tok
        spans.append(
            f'<span title="p = {p:.3f}" style="background:{prob_color(p)};color:#111;border-radius:4px;'
            f'padding:1px 3px;margin:0 1px;white-space:pre">{_escape(text)}</span>'
        )
    if caption.hit_limit:
        spans.append('<span title="stopped at the token limit" style="color:#a33;padding:0 4px">✂ cut at the limit</span>')
    return '<div style="font-size:1.35rem;line-height:2.1">' + "".join(spans) + "</div>"


# -- Caption page -------------------------------------------------------------------------------
def caption_record(result: DecodeResult, info: ModelInfo | None = None, image_name: str = "") -> dict[str, Any]:
    """One decode result as a JSON-ready dict (settings, timings, every returned caption and beam)."""
    config = {k: v for k, v in result.config.to_dict().items() if k not in ("label",)}
    record: dict[str, Any] = {
        "image": image_name,
        "caption": result.best.text,
        "decoding": config,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "captions": [c.to_dict() for c in result.captions],
    }
    if result.config.strategy == "beam":
        record["beams"] = [c.to_dict() for c in result.beams]
    if info is not None:
        record["model"] = {"name": info.name, "family": info.family, "source": info.source, "dtype": info.dtype}
    return record


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# -- Compare page -------------------------------------------------------------------------------
def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams / all n-grams over `texts` (0 when there are none)."""
    grams = []
    for text in texts:
        words = text.lower().split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def num_tokens(caption: Caption) -> int:
    """Generated tokens, the end token included: what the score's length penalty divides by."""
    return len(caption.token_ids)


def compare_note(length_penalty: float) -> str:
    """What the Compare tables' numbers are, in words that hold for every row (greedy, beam and sampled)."""
    return (
        "**log-prob (nats)**: the model's own log-probability of the caption, summed over its tokens: the "
        "same yardstick for every row, so compare rows by log-prob. **score (nats)**: what the strategy ranked its "
        "candidates by: the log-probabilities of the distribution it chose from, after the processors named "
        "in *score uses* (temperature, top-k, top-p, repetition penalty, no-repeat n-grams), summed and divided "
        f"by tokens ** length penalty ({length_penalty:g}). Where *score uses* says *model's own* and the "
        "penalty is 0 it equals the log-prob; otherwise it can be higher or lower. **tokens** count the end token."
    )


# The units of the Compare tables' number columns, in their headers on the page (the files keep plain names).
COMPARE_HEADERS = {"log-prob": "log-prob (nats)", "score": "score (nats)", "time (s)": "time (s)"}


def with_units(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with COMPARE_HEADERS as its column names."""
    return table.rename(columns=COMPARE_HEADERS)


def comparison_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """One row per configuration: its best caption, log-probability, score (and what it uses), tokens, time."""
    rows = []
    for r in results:
        texts = [c.text for c in r.captions]
        rows.append(
            {
                "strategy": config_label(r.config),
                "caption": r.best.text + (" ✂" if r.best.hit_limit else ""),
                "log-prob": round(r.best.logprob, 3),
                "score": round(r.best.score, 3),
                "score uses": score_basis(r.config),
                "tokens": num_tokens(r.best),
                "confidence": round(r.best.confidence, 3),
                "samples": len(r.captions),
                "seed": str(r.config.seed) if r.config.strategy == "sample" else "",  # text: 2**64 - 1 in full
                "distinct-1": round(distinct_n(texts, 1), 3) if len(texts) > 1 else None,
                "distinct-2": round(distinct_n(texts, 2), 3) if len(texts) > 1 else None,
                "time (s)": round(r.timings.get("decode", 0.0), 3),
            }
        )
    table = pd.DataFrame(rows)
    if len(table) > 1 and table["time (s)"].nunique() == 1:  # decoded in one call: its time is said once
        table = table.drop(columns="time (s)")
    return table


def readable(table: pd.DataFrame, digits: int = 3, wide: Sequence[str] = ("caption",)) -> "pd.io.formats.style.Styler":
    """A table for st.table: numbers to `digits` decimals, blanks for missing values, text escaped (names
    such as `*md*` are shown as typed), no index, and the `wide` columns kept wide enough to read on a
    narrow window."""
    style = table.style.format(precision=digits, na_rep="").hide(axis="index")
    text = [c for c in table.columns if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])]  # st.table: Markdown
    style = style.format(lambda v: _escape(v) if isinstance(v, str) else ("" if v is None else v), subset=text)
    columns = [c for c in wide if c in table.columns]
    return style.set_properties(subset=columns, **{"min-width": "14em"}) if columns else style


def samples_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every sample of the sampling configurations."""
    rows = [
        {
            "strategy": config_label(r.config),
            "sample": i + 1,
            "caption": c.text,
            "log-prob": round(c.logprob, 3),
            "score": round(c.score, 3),
            "tokens": num_tokens(c),
        }
        for r in results
        if r.config.strategy == "sample"
        for i, c in enumerate(r.captions)
    ]
    return pd.DataFrame(rows, columns=["strategy", "sample", "caption", "log-prob", "score", "tokens"])


def beams_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every finished beam hypothesis of the beam configurations, best first, with its score."""
    rows = [
        {
            "strategy": config_label(r.config),
            "rank": i + 1,
            "caption": c.text,
            "score": round(c.score, 4),
            "log-prob": round(c.logprob, 3),
            "tokens": num_tokens(c),
            "ended": c.finished,
        }
        for r in results
        if r.config.strategy == "beam"
        for i, c in enumerate(r.beams)
    ]
    return pd.DataFrame(rows, columns=["strategy", "rank", "caption", "score", "log-prob", "tokens", "ended"])


def every_caption_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every caption of every configuration (each sample, each finished beam): what Compare's CSV holds."""
    rows = []
    for r in results:
        kind = {"beam": "beam", "sample": "sample"}.get(r.config.strategy, "greedy")
        for i, c in enumerate(r.beams if r.config.strategy == "beam" else r.captions):
            rows.append(
                {
                    "strategy": config_label(r.config),
                    "kind": kind,
                    "rank": i + 1,
                    "caption": c.text,
                    "log-prob": c.logprob,
                    "score": c.score,
                    "score uses": score_basis(r.config),
                    "tokens": num_tokens(c),
                    "ended": c.finished,
                    "confidence": c.confidence,
                }
            )
    return pd.DataFrame(rows)


def comparison_record(results: Sequence[DecodeResult], info: ModelInfo | None, image_name: str) -> dict[str, Any]:
    """Compare's JSON: per configuration, its settings, timings, every caption and every beam."""
    configurations = []
    for r in results:
        record = caption_record(r)
        record.pop("image")
        configurations.append({"strategy": config_label(r.config), **record})
    out: dict[str, Any] = {"image": image_name, "configurations": configurations}
    if info is not None:
        out["model"] = {"name": info.name, "family": info.family, "source": info.source, "dtype": info.dtype}
    return out


_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon")
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def _step_tick(tokens_at_step: list[str], step: int) -> str:
    distinct = list(dict.fromkeys(tokens_at_step))
    words = distinct[0] if len(distinct) == 1 else " / ".join(distinct[:2]) + (" …" if len(distinct) > 2 else "")
    return f"{step}<br>{html.escape(words)}"


def token_prob_figure(results: Sequence[DecodeResult]) -> go.Figure:
    """Per-token probability of each configuration's best caption: one line each, never hidden by another.

    Integer steps on x, labelled with the tokens chosen there; each line has its own marker and dash,
    and a small sideways offset, so lines with the same values stay visible side by side.
    """
    fig = go.Figure()
    n = len(results)
    spread = 0.3 if n > 1 else 0.0
    labels = [[token_label(t) for t in r.best.tokens] for r in results]
    for i, (r, toks) in enumerate(zip(results, labels)):
        offset = (i / (n - 1) - 0.5) * spread if n > 1 else 0.0
        steps = list(range(1, len(toks) + 1))
        fig.add_trace(
            go.Scatter(
                x=[s + offset for s in steps],
                y=r.best.token_probs,
                mode="lines+markers",
                name=html.escape(config_label(r.config)),
                text=toks,
                customdata=steps,
                marker=dict(symbol=_SYMBOLS[i % len(_SYMBOLS)], size=8),
                line=dict(dash=_DASHES[i % len(_DASHES)], width=2),
                hovertemplate="step %{customdata}: <b>%{text}</b><br>p = %{y:.3f}<extra>%{fullData.name}</extra>",
            )
        )
    longest = max((len(t) for t in labels), default=0)
    ticks = [_step_tick([t[s - 1] for t in labels if len(t) >= s], s) for s in range(1, longest + 1)]
    fig.update_layout(
        xaxis=dict(
            title="step and the token chosen there",
            tickmode="array",
            tickvals=list(range(1, longest + 1)),
            ticktext=ticks,
            range=[0.4, longest + 0.6],
        ),
        yaxis=dict(title="probability", range=[0, 1.05], tickformat=".1f"),
        height=420,
        margin=dict(l=10, r=10, t=30, b=10),
        legend_title_text="strategy",
        hovermode="closest",
    )
    return fig


# -- Explain page -------------------------------------------------------------------------------
def step_figure(caption: Caption) -> go.Figure:
    """Chosen token's probability (bars) and the distribution's entropy (line, right axis) per step."""
    labels = [f"{i + 1}. {token_label(t)}" for i, t in enumerate(caption.tokens)]
    bar, line = pc.qualitative.Plotly[0], pc.qualitative.Plotly[1]
    top = max([1.0, *caption.entropies]) * 1.1
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=caption.token_probs, name="probability of the chosen token", marker_color=bar))
    fig.add_trace(
        go.Scatter(x=labels, y=caption.entropies, name="entropy (nats)", yaxis="y2", mode="lines+markers", line=dict(color=line))
    )
    fig.update_layout(
        yaxis=dict(title="probability", range=[0, 1.05], tickformat=".1f", dtick=0.2),
        yaxis2=dict(
            title="entropy (nats)", overlaying="y", side="right", range=[0, top], tickformat=".1f", nticks=6, showgrid=False
        ),
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=1.15),
    )
    return fig


def alternatives_table(caption: Caption, k: int = 5) -> pd.DataFrame:
    """Per step: the chosen token and its probability, then the model's top-k tokens with theirs."""
    rows = []
    for i, (tok, p, alts) in enumerate(zip(caption.tokens, caption.token_probs, caption.alternatives)):
        row: dict[str, Any] = {"step": i + 1, "chosen": token_label(tok), "p": round(p, 4)}
        for j, (_, text, q) in enumerate(alts[:k]):
            row[f"#{j + 1}"] = f"{token_label(text)} ({q:.3f})"
        rows.append(row)
    return pd.DataFrame(rows)


def layer_text(layer: int | str) -> str:
    return layer if isinstance(layer, str) else f"layer {layer + 1}"


def head_text(head: int | str) -> str:
    return head if isinstance(head, str) else f"head {head + 1}"


def aggregate_attention(attentions: np.ndarray, layer: int | str = LAYER_MEAN, head: int | str = HEAD_MEAN) -> np.ndarray:
    """(tokens, layers, heads, rows, cols) cross-attention -> (tokens, rows, cols).

    `layer`: an index, or LAYER_MEAN to average over layers. `head`: an index, HEAD_MEAN or HEAD_MAX.
    """
    a = np.asarray(attentions, dtype=np.float32)
    if a.ndim != 5:
        raise ValueError(f"expected (tokens, layers, heads, rows, cols) attention, got shape {a.shape}")
    a = a.mean(axis=1) if layer == LAYER_MEAN else a[:, int(layer)]
    if head == HEAD_MEAN:
        return a.mean(axis=1)
    if head == HEAD_MAX:
        return a.max(axis=1)
    return a[:, int(head)]


def word_maps(caption: Caption, layer: int | str = LAYER_MEAN, head: int | str = HEAD_MEAN) -> list[tuple[str, np.ndarray]]:
    """One (word, rows x cols map) per word of the caption: its tokens' maps averaged."""
    if caption.attentions is None:
        return []
    maps = aggregate_attention(caption.attentions, layer, head)
    return [(word, maps[idx].mean(axis=0)) for word, idx in word_groups(caption.tokens, caption.finished)]


_HEAT_LUT = np.array([_rgb(c) for c in pc.sample_colorscale(HEAT_SCALE, list(np.linspace(0, 1, 256)))], dtype=np.float32)


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through Plotly's Inferno scale."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0, 1)
    return _HEAT_LUT[np.round(v * 255).astype(int)].round().astype(np.uint8)


def heat_legend_html(what: str = "attention") -> str:
    return scale_legend_html(HEAT_SCALE, f"little {what}", f"most {what}")


def display_image(image: Image.Image, side: int = 320) -> Image.Image:
    """The image scaled so its longer side is `side` pixels (small images enlarged, sharp edges kept)."""
    w, h = image.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale >= 2 else Image.BILINEAR
    return image.convert("RGB").resize(size, resample)


def model_input(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image as the model sees it: stretched whole to its input `size` (height, width), nothing cropped."""
    h, w = size
    return image.convert("RGB").resize((w, h), Image.BICUBIC)


def _stretch(amap: np.ndarray) -> np.ndarray:
    m = np.nan_to_num(np.asarray(amap, dtype=np.float32))
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def overlay(image: Image.Image, amap: np.ndarray, side: int = 320, alpha: float = 0.6) -> Image.Image:
    """The attention map (scaled to its own range) stretched over the image (models see it whole, uncropped)."""
    base = display_image(image, side)
    heat = Image.fromarray((_stretch(amap) * 255).astype(np.uint8), "L").resize(base.size, Image.BILINEAR)
    colored = Image.fromarray(colorize(np.asarray(heat, dtype=np.float32) / 255.0), "RGB")
    return Image.blend(base, colored, float(min(max(alpha, 0.0), 1.0)))


def attention_figure(
    image: Image.Image, amap: np.ndarray, opacity: float = 0.6, title: str = "", side: int = 448, what: str = "attention"
) -> go.Figure:
    """One word's attention over the image (the same overlay as the grid), with a colour scale legend in
    attention weights and each patch's weight on hover."""
    base = overlay(image, amap, side, opacity)
    w, h = base.size
    m = np.nan_to_num(np.asarray(amap, dtype=np.float32))
    rows, cols = m.shape
    lo, hi = float(m.min()), float(m.max())
    fig = go.Figure(go.Image(z=np.asarray(base), hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(  # invisible: it only answers the hover with the patch's weight
            z=m,
            x0=w / cols / 2,
            dx=w / cols,
            y0=h / rows / 2,
            dy=h / rows,
            opacity=0,
            showscale=False,
            hovertemplate="this patch: %{z:.3f} of the attention<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(  # the legend: the overlay's colours, lo..hi
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker=dict(
                color=[lo, hi],
                cmin=lo,
                cmax=hi if hi > lo else lo + 1e-6,
                colorscale=HEAT_COLORSCALE,
                showscale=True,
                colorbar=dict(title=dict(text=what, side="right"), tickformat=".2f", thickness=14),
            ),
        )
    )
    fig.update_layout(
        title=dict(text=html.escape(title), font=dict(size=14)),
        height=side + 60,
        margin=dict(l=0, r=0, t=40, b=0),
        xaxis=dict(visible=False, range=[0, w]),
        yaxis=dict(visible=False, range=[h, 0], scaleanchor="x"),
        plot_bgcolor="white",
    )
    return fig


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


HEATMAP_LEGEND = "little attention -> most (each map scaled to its own range)"
_NO_SUCH_CHARACTER = "\U0010fffd"  # a private-use code point: every font draws its missing-glyph box for it


@functools.lru_cache(maxsize=4096)
def _glyph(font: ImageFont.ImageFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def missing_glyphs(text: str, font: ImageFont.ImageFont) -> list[str]:
    """The characters of `text` that `font` would draw as its missing-glyph box."""
    box = _glyph(font, _NO_SUCH_CHARACTER)
    return [c for c in dict.fromkeys(text) if not c.isspace() and _glyph(font, c) == box]


def drawable(text: str, font: ImageFont.ImageFont) -> str:
    """`text` with each character the font lacks (Pillow's own font has no arrows, accents or CJK) replaced by
    its unaccented letter, or "?" where it has none, so the PNG never shows a missing-glyph box."""
    missing = set(missing_glyphs(text, font))
    if not missing:
        return text
    plain = {c: unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() for c in missing}
    return "".join((plain[c] or "?") if c in missing else c for c in text)


def _colour_bar(width: int, height: int = 12) -> Image.Image:
    ramp = np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))
    return Image.fromarray(colorize(ramp), "RGB")


@dataclass
class HeatmapGrid:
    """What the downloadable heatmap figure shows: the image, one overlay per word, and which attention."""

    image: Image.Image
    maps: Sequence[tuple[str, np.ndarray]]
    caption: str = ""
    layer: int | str = LAYER_MEAN
    head: int | str = HEAD_MEAN
    opacity: float = 0.6
    cols: int = 4
    tile: int = 200
    method: str = "attention"  # captioner.explain.METHODS: which explanation the maps are
    title_lines: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.title_lines = [f"“{self.caption}”"[:90]] if self.caption else []
        if self.method == "attention":
            self.title_lines.append(f"cross-attention: {layer_text(self.layer)}, {head_text(self.head)}")
        else:
            self.title_lines.append(f"method: {self.method}")


def heatmap_figure(grid: HeatmapGrid) -> Image.Image:
    """A labelled PNG grid: the image, then one overlay per word; the title says which layer and head."""
    panels = [("image", display_image(grid.image, grid.tile))]
    panels += [(f"“{w}”", overlay(grid.image, m, grid.tile, grid.opacity)) for w, m in grid.maps]
    cols = max(1, min(grid.cols, len(panels)))
    rows = math.ceil(len(panels) / cols)
    label_h, pad, head = 26, 8, 8 + 24 * len(grid.title_lines)
    cell_w, cell_h = grid.tile + pad, grid.tile + label_h + pad
    width = cols * cell_w + pad
    fig = Image.new("RGB", (width, head + rows * cell_h + pad + 40), "white")
    draw = ImageDraw.Draw(fig)
    for i, line in enumerate(grid.title_lines):
        draw.text((pad, 8 + 24 * i), drawable(line, _font(18)), fill="black", font=_font(18))
    for i, (label, panel) in enumerate(panels):
        x = pad + (i % cols) * cell_w
        y = head + pad + (i // cols) * cell_h
        fig.paste(panel, (x + (grid.tile - panel.width) // 2, y + (grid.tile - panel.height) // 2))
        draw.text((x, y + grid.tile + 4), drawable(label[:28], _font(16)), fill="black", font=_font(16))
    bar_y = head + rows * cell_h + pad + 6
    fig.paste(_colour_bar(min(240, width - 2 * pad)), (pad, bar_y))
    draw.text((pad, bar_y + 14), HEATMAP_LEGEND, fill="black", font=_font(13))
    return fig


def heatmap_file_name(layer: int | str, head: int | str, method: str = "attention") -> str:
    if method != "attention":
        return f"heatmaps-{method}.png"
    return f"heatmaps-{layer_text(layer).replace(' ', '-')}-{head_text(head).replace(' ', '-')}.png"


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# -- Batch page ---------------------------------------------------------------------------------
def thumbnail_uri(image: Image.Image, side: int = 96) -> str:
    """A small PNG as a data URI (for st.column_config.ImageColumn)."""
    thumb = image.convert("RGB")
    thumb.thumbnail((side, side))
    if max(thumb.size) < side // 2:
        thumb = display_image(thumb, side)
    return "data:image/png;base64," + base64.b64encode(png_bytes(thumb)).decode()


@dataclass
class References:
    """Reference captions typed on the Batch page: per name, its captions and the line that named it first."""

    captions: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one message per line that was skipped


def parse_references(text: str) -> References:
    """Reference captions from lines of `file name: caption one | caption two` (blank lines, # comments ignored).

    A line without that shape is skipped with a message naming it; the other lines still count.
    """
    refs = References()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, captions = line.partition(":")
        caps = [c.strip() for c in captions.split("|") if c.strip()]
        if not sep or not name.strip() or not caps:
            refs.problems.append(
                f"Reference line {number} should read 'file name: caption | another caption', not {line[:60]!r}: skipped."
            )
            continue
        refs.captions.setdefault(name.strip(), []).extend(caps)
        refs.lines.setdefault(name.strip(), number)
    return refs


def _name_keys(name: str) -> tuple[str, str, str]:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name, base, base.rsplit(".", 1)[0]


def references_for(name: str, refs: dict[str, list[str]]) -> list[str]:
    """References for a file: by its full name, base name, or base name without extension."""
    for key in _name_keys(name):
        if key in refs:
            return refs[key]
    return []


def attach_references(
    rows: Sequence[CaptionRow], typed: References, known: dict[str, Sequence[str]] | None = None, batch_names: Sequence[str] = ()
) -> tuple[list[CaptionRow], list[str]]:
    """Rows with their references (typed lines first, then `known` ones such as the examples'), and a
    message for each typed line whose name matches no file of the batch (`rows` and `batch_names`)."""
    refs = {**{k: list(v) for k, v in (known or {}).items()}, **typed.captions}
    out = [replace(r, references=list(references_for(r.path, refs))) for r in rows]
    names = {key for name in [*(r.path for r in rows), *batch_names] for key in _name_keys(name)}
    unmatched = [
        f"Reference line {typed.lines[k]} names {k!r}, which is not in the batch." for k in typed.captions if k not in names
    ]
    return out, unmatched


def row_seconds(row: CaptionRow) -> float | None:
    """The seconds a row's image took, every stage (read, preprocess, encode, decode) together."""
    timings = json.loads(row.timings or "{}")
    return sum(timings.values()) if timings else None


# Shown in the image cell of a file that got no caption (an empty cell reads "None").
NO_IMAGE_URI = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="#eee"/>'
        b'<path d="M30 30L66 66M66 30L30 66" stroke="#b33" stroke-width="6"/></svg>'
    ).decode()
)


def batch_table(rows: Sequence[CaptionRow], unsure: Container[str] = (), changed: Sequence[str] = ()) -> pd.DataFrame:
    """The batch results, one row per file; per-image BLEU-4 and exact match when references are given
    (the rows as `captioner.batch.rows.score_rows` scored them). `unsure`: the files whose caption is unsure
    because of the settings `changed` from the model's own (their image looks like its world)."""
    with_refs = any(r.references for r in rows)
    records = []
    for r in rows:
        scored = bool(r.references) and r.ok
        seconds = row_seconds(r)
        caption = (r.caption or "") + (" ✂" if r.hit_limit else "") if r.ok else "✕ no caption (see the note)"
        record: dict[str, Any] = {
            "thumbnail": thumbnail_uri(r.thumbnail) if r.thumbnail is not None else NO_IMAGE_URI,
            "file": r.path,
            "caption": caption,
            "confidence": None if r.confidence is None else round(r.confidence, 3),
        }
        if with_refs:
            record["BLEU-4"] = None if r.bleu4 is None else round(r.bleu4, 3)
            record["matches a reference"] = exact_match(r.caption or "", r.references) if scored else None
            record["references"] = " | ".join(r.references)
        record.update(
            {
                "log-prob": None if r.logprob is None else round(r.logprob, 3),
                "time (s)": None if seconds is None else round(seconds, 3),
                "note": r.error or _row_note(r, r.path in unsure, changed),
            }
        )
        records.append(record)
    return pd.DataFrame(records)


def batch_display(table: pd.DataFrame, columns: Sequence[str] = ("confidence", "BLEU-4")) -> pd.DataFrame:
    """The batch table as the page shows it: the number columns with blanks as text (3 decimals, which sort
    as the numbers do in [0, 1]), since st.dataframe writes "None" in an empty number cell. The CSV keeps numbers."""
    shown = table.copy()
    for c in columns:
        if c in shown.columns:
            shown[c] = [f"{v:.3f}" if isinstance(v, (int, float)) and v == v else "" for v in shown[c]]
    return shown


def batch_columns_shown(table: pd.DataFrame) -> list[str]:
    """The batch table's columns that fit the page's width (the CSV keeps them all, log-prob and time
    included); notes only when there are some."""
    shown = ["thumbnail", "file", "caption", "confidence", "BLEU-4", "matches a reference", "references", "note"]
    return [c for c in shown if c in table.columns and (c != "note" or table[c].astype(bool).any())]


def _row_note(row: CaptionRow, unsure: bool = False, changed: Sequence[str] = ()) -> str:
    notes = []
    if row.hit_limit:
        notes.append("stopped at the token limit")
    if row.out_of_world:
        notes.append("outside the built-in model's world: a guess")
    elif unsure:
        notes.append(f"unsure because of the settings ({', '.join(changed) or 'not the model’s own'})")
    return "; ".join(notes)


def csv_bytes(table: pd.DataFrame, drop: Sequence[str] = ("thumbnail",)) -> bytes:
    """A table as UTF-8 CSV, without the given columns; text cells safe in a spreadsheet (batch.formats.spreadsheet_cell)."""
    return table.drop(columns=[c for c in drop if c in table.columns]).map(spreadsheet_cell).to_csv(index=False).encode("utf-8")
