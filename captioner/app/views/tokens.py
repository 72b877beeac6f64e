"""A caption token by token: its tokens coloured by probability (HTML), the per-token probability and
entropy figures, and the alternatives the model weighed at each step."""

from __future__ import annotations

import html
from typing import Any, Sequence

import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go

from captioner.app.views.colours import prob_color
from captioner.app.views.text import END_LABEL, config_label, markdown_escape, token_label
from captioner.decoding import Caption, DecodeResult

_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon")
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


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
            f'padding:1px 3px;margin:0 1px;white-space:pre">{markdown_escape(text)}</span>'
        )
    if caption.hit_limit:
        spans.append('<span title="stopped at the token limit" style="color:#a33;padding:0 4px">✂ cut at the limit</span>')
    return '<div style="font-size:1.35rem;line-height:2.1">' + "".join(spans) + "</div>"


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
