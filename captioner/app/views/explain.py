"""The Explain page's attention views: cross-attention aggregated over layers and heads, one map per word,
and that map over the image (a PIL overlay for the grid, a Plotly figure with hover and colour scale)."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from captioner.app.settings import HEAD_MAX, HEAD_MEAN, LAYER_MEAN
from captioner.app.views.colours import HEAT_COLORSCALE, colorize
from captioner.app.views.images import display_image
from captioner.decoding import Caption
from captioner.explain.result import word_groups  # one rule for what a word of a caption is


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
    fig = go.Figure(go.Image(z=np.asarray(base), hoverinfo="skip"))
    fig.add_trace(_patch_hover(m, w, h))
    fig.add_trace(_colour_scale(float(m.min()), float(m.max()), what))
    fig.update_layout(
        title=dict(text=html.escape(title), font=dict(size=14)),
        height=side + 60,
        margin=dict(l=0, r=0, t=40, b=0),
        xaxis=dict(visible=False, range=[0, w]),
        yaxis=dict(visible=False, range=[h, 0], scaleanchor="x"),
        plot_bgcolor="white",
    )
    return fig


def _patch_hover(m: np.ndarray, width: int, height: int) -> go.Heatmap:
    """An invisible heatmap over the image: it only answers the hover with the patch's weight."""
    rows, cols = m.shape
    return go.Heatmap(
        z=m,
        x0=width / cols / 2,
        dx=width / cols,
        y0=height / rows / 2,
        dy=height / rows,
        opacity=0,
        showscale=False,
        hovertemplate="this patch: %{z:.3f} of the attention<extra></extra>",
    )


def _colour_scale(lo: float, hi: float, what: str) -> go.Scatter:
    """The legend: the overlay's colours from the map's lowest weight to its highest."""
    return go.Scatter(
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
