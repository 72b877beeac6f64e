"""What the app shows, built from engine results: tables, Plotly figures, heatmap overlays, metrics.

No Streamlit here: every function takes `Caption` / `DecodeResult` objects and returns plain data
(pandas frames, Plotly figures, PIL images, strings), so pages stay short and this is unit-tested.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from captioner.config import DecodingConfig
from captioner.decoding import Caption, DecodeResult
from captioner.models.base import ModelInfo

END_LABEL = "⟨end⟩"


# -- labels and colours -------------------------------------------------------------------------
def config_label(config: DecodingConfig) -> str:
    """A short name for a decoding configuration: its label, or one made from its settings."""
    if config.label:
        return config.label
    if config.strategy == "greedy":
        return "greedy"
    if config.strategy == "beam":
        return f"beam ({config.num_beams})"
    parts = []
    if config.top_k:
        parts.append(f"top-k {config.top_k}")
    if config.top_p < 1:
        parts.append(f"top-p {config.top_p:g}")
    if config.temperature != 1:
        parts.append(f"T {config.temperature:g}")
    return "sample" + (" " + ", ".join(parts) if parts else "")


def token_label(token: str) -> str:
    """How a token reads in tables and on heatmaps: trimmed, the end token named."""
    text = token.strip()
    if text in ("<|endoftext|>", "</s>", "[SEP]", "<eos>"):
        return END_LABEL
    return text or repr(token)


def prob_color(p: float) -> str:
    """Background colour for a token: red (unlikely) through yellow to green (certain)."""
    p = min(max(float(p), 0.0), 1.0)
    return f"hsl({round(120 * p)}, 75%, 78%)"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&:])")


def _escape(text: str) -> str:
    """Text safe inside Markdown with HTML: every special character becomes an entity."""
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(1))};", text)


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
    return '<div style="font-size:1.35rem;line-height:2.1">' + "".join(spans) + "</div>"


# -- Caption page -------------------------------------------------------------------------------
def caption_record(result: DecodeResult, info: ModelInfo | None = None, image_name: str = "") -> dict[str, Any]:
    """One decode result as a JSON-ready dict (settings, timings, every returned caption)."""
    config = {k: v for k, v in result.config.to_dict().items() if k not in ("label",)}
    record: dict[str, Any] = {
        "image": image_name,
        "caption": result.best.text,
        "decoding": config,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "captions": [c.to_dict() for c in result.captions],
    }
    if info is not None:
        record["model"] = {"name": info.name, "family": info.family, "source": info.source, "dtype": info.dtype}
    return record


# -- Compare page -------------------------------------------------------------------------------
def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams / all n-grams over `texts` (0 when there are none)."""
    grams = []
    for text in texts:
        words = text.lower().split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _length(caption: Caption) -> int:
    """Generated tokens without the end token."""
    return len(caption.token_ids) - (1 if caption.finished else 0)


def comparison_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """One row per configuration: its best caption, log-probability, length, score and time."""
    rows = []
    for r in results:
        texts = [c.text for c in r.captions]
        rows.append(
            {
                "strategy": config_label(r.config),
                "caption": r.best.text,
                "log-prob": round(r.best.logprob, 3),
                "score": round(r.best.score, 3),
                "length": _length(r.best),
                "samples": len(r.captions),
                "distinct-1": round(distinct_n(texts, 1), 3) if len(texts) > 1 else None,
                "distinct-2": round(distinct_n(texts, 2), 3) if len(texts) > 1 else None,
                "time (s)": round(r.timings.get("decode", 0.0), 4),
            }
        )
    return pd.DataFrame(rows)


def samples_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every sample of the sampling configurations."""
    rows = [
        {"strategy": config_label(r.config), "sample": i + 1, "caption": c.text, "log-prob": round(c.logprob, 3)}
        for r in results
        if r.config.strategy == "sample"
        for i, c in enumerate(r.captions)
    ]
    return pd.DataFrame(rows, columns=["strategy", "sample", "caption", "log-prob"])


def beams_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every finished beam hypothesis of the beam configurations, best first, with its score."""
    rows = [
        {
            "strategy": config_label(r.config),
            "rank": i + 1,
            "caption": c.text,
            "score": round(c.score, 4),
            "log-prob": round(c.logprob, 3),
            "length": _length(c),
            "finished": c.finished,
        }
        for r in results
        if r.config.strategy == "beam"
        for i, c in enumerate(r.beams)
    ]
    return pd.DataFrame(rows, columns=["strategy", "rank", "caption", "score", "log-prob", "length", "finished"])


def token_prob_figure(results: Sequence[DecodeResult]) -> go.Figure:
    """Per-token probability of each configuration's best caption, one line per configuration."""
    fig = go.Figure()
    for r in results:
        c = r.best
        labels = [token_label(t) for t in c.tokens]
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(labels) + 1)),
                y=c.token_probs,
                mode="lines+markers",
                name=config_label(r.config),
                text=labels,
                hovertemplate="step %{x}: <b>%{text}</b><br>p = %{y:.3f}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        xaxis_title="token position", yaxis_title="probability", yaxis_range=[0, 1.02],
        height=360, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="strategy",
    )
    return fig


# -- Explain page -------------------------------------------------------------------------------
def step_figure(caption: Caption) -> go.Figure:
    """Chosen token's probability (bars) and the distribution's entropy (line, right axis) per step."""
    labels = [f"{i + 1}. {token_label(t)}" for i, t in enumerate(caption.tokens)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=caption.token_probs, name="probability", marker_color="#4C78A8"))
    fig.add_trace(
        go.Scatter(x=labels, y=caption.entropies, name="entropy (nats)", yaxis="y2", mode="lines+markers",
                   line=dict(color="#F58518"))
    )
    fig.update_layout(
        yaxis=dict(title="probability", range=[0, 1.02]),
        yaxis2=dict(title="entropy (nats)", overlaying="y", side="right", rangemode="tozero"),
        height=340, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12),
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


def word_groups(tokens: Sequence[str], finished: bool) -> list[tuple[str, list[int]]]:
    """Words of a caption as (text, token indices); the end token is left out.

    Sub-word tokenizers (GPT-2's BPE) mark a word start with a leading space: tokens without one
    join the previous word. When no token after the first has a leading space the tokenizer is
    word-level and each token is a word.
    """
    n = len(tokens) - (1 if finished and tokens else 0)
    tokens = list(tokens[:n])
    bpe = any(t[:1].isspace() for t in tokens[1:])
    groups: list[tuple[str, list[int]]] = []
    for i, tok in enumerate(tokens):
        if not tok.strip():
            continue
        if bpe and groups and not tok[:1].isspace():
            text, idx = groups[-1]
            groups[-1] = (text + tok, idx + [i])
        else:
            groups.append((tok, [i]))
    return [(text.strip(), idx) for text, idx in groups]


LAYER_MEAN = "mean over layers"
HEAD_MEAN, HEAD_MAX = "mean over heads", "max over heads"


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


# Colour map anchors (close to matplotlib's "inferno"), interpolated linearly.
_CMAP = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]],
    dtype=np.float32,
)


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through the colour map."""
    v = np.clip(np.nan_to_num(values), 0, 1) * (len(_CMAP) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_CMAP) - 2)
    frac = (v - lo)[..., None]
    return (_CMAP[lo] * (1 - frac) + _CMAP[lo + 1] * frac).round().astype(np.uint8)


def display_image(image: Image.Image, side: int = 320) -> Image.Image:
    """The image scaled so its longer side is `side` pixels (small images enlarged, sharp edges kept)."""
    w, h = image.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale >= 2 else Image.BILINEAR
    return image.convert("RGB").resize(size, resample)


def overlay(image: Image.Image, amap: np.ndarray, side: int = 320, alpha: float = 0.6) -> Image.Image:
    """The attention map stretched over the image (the models see the whole image, uncropped)."""
    base = display_image(image, side)
    m = np.asarray(amap, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    heat = Image.fromarray((m * 255).astype(np.uint8), "L").resize(base.size, Image.BILINEAR)
    colored = Image.fromarray(colorize(np.asarray(heat, dtype=np.float32) / 255.0), "RGB")
    return Image.blend(base, colored, alpha)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def heatmap_figure(image: Image.Image, maps: Sequence[tuple[str, np.ndarray]], cols: int = 4, tile: int = 200,
                   title: str = "") -> Image.Image:
    """A labelled grid: the image, then one overlay per word (what the Explain page downloads)."""
    panels = [("image", display_image(image, tile))] + [(w, overlay(image, m, tile)) for w, m in maps]
    cols = max(1, min(cols, len(panels)))
    rows = math.ceil(len(panels) / cols)
    label_h, pad, head = 26, 8, (34 if title else 0)
    cell_w, cell_h = tile + pad, tile + label_h + pad
    fig = Image.new("RGB", (cols * cell_w + pad, head + rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(fig)
    if title:
        draw.text((pad, 8), title, fill="black", font=_font(18))
    for i, (label, panel) in enumerate(panels):
        x = pad + (i % cols) * cell_w
        y = head + pad + (i // cols) * cell_h
        fig.paste(panel, (x + (tile - panel.width) // 2, y + (tile - panel.height) // 2))
        draw.text((x, y + tile + 4), label[:28], fill="black", font=_font(16))
    return fig


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


def parse_references(text: str) -> dict[str, list[str]]:
    """Reference captions from lines of `file name: caption one | caption two` (blank lines, # comments ignored).

    Raises ValueError naming the first line without a `name: caption` shape.
    """
    refs: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, captions = line.partition(":")
        caps = [c.strip() for c in captions.split("|") if c.strip()]
        if not sep or not name.strip() or not caps:
            raise ValueError(f"Reference line {number} should read 'file name: caption | another caption', not {line[:60]!r}.")
        refs.setdefault(name.strip(), []).extend(caps)
    return refs


def references_for(name: str, refs: dict[str, list[str]]) -> list[str]:
    """References for a file: by its full name, base name, or base name without extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0]
    for key in (name, base, stem):
        if key in refs:
            return refs[key]
    return []


@dataclass
class BatchRow:
    """One file of a batch: a caption, or the reason it got none."""

    name: str
    caption: str = ""
    score: float | None = None
    logprob: float | None = None
    seconds: float | None = None
    thumbnail: str | None = None
    problem: str = ""
    references: tuple[str, ...] = ()


def batch_table(rows: Sequence[BatchRow]) -> pd.DataFrame:
    """The batch results as a table (thumbnail data URIs included)."""
    return pd.DataFrame(
        [
            {
                "thumbnail": r.thumbnail, "file": r.name, "caption": r.caption,
                "score": None if r.score is None else round(r.score, 4),
                "log-prob": None if r.logprob is None else round(r.logprob, 3),
                "time (s)": None if r.seconds is None else round(r.seconds, 3),
                "references": " | ".join(r.references), "problem": r.problem,
            }
            for r in rows
        ],
        columns=["thumbnail", "file", "caption", "score", "log-prob", "time (s)", "references", "problem"],
    )


def batch_metrics(rows: Sequence[BatchRow]) -> dict[str, float] | None:
    """Corpus BLEU-4 and CIDEr-D over the captioned files that have references (None if none do)."""
    from captioner.metrics import cider_d, corpus_bleu4

    scored = [r for r in rows if r.references and not r.problem]
    if not scored:
        return None
    hyps = [r.caption for r in scored]
    refs = [list(r.references) for r in scored]
    return {"images": len(scored), "BLEU-4": corpus_bleu4(hyps, refs), "CIDEr-D": cider_d(hyps, refs)}


def csv_bytes(table: pd.DataFrame, drop: Sequence[str] = ("thumbnail",)) -> bytes:
    """A table as UTF-8 CSV, without the given columns."""
    return table.drop(columns=[c for c in drop if c in table.columns]).to_csv(index=False).encode("utf-8")


def markdown_escape(text: str) -> str:
    """Plain text for st.markdown (user-supplied names and captions)."""
    return _escape(text)
