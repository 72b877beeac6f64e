"""The Explain page's pickers for its heatmaps: layer, heads and opacity, and the word shown large."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from captioner.app import settings
from captioner.app.ui import keys
from captioner.app.ui.controls import prepare
from captioner.models.base import CaptionModel
from captioner.app.views.text import head_text, layer_text, markdown_escape


def attention_controls(model: CaptionModel, attention: bool = True) -> tuple[int | str, int | str, float]:
    """Layer, head and opacity pickers in a row (layer and head off unless the maps are raw `attention`);
    returns (layer, head, opacity)."""
    layers = [settings.LAYER_MEAN, *range(model.num_layers)]
    heads = [settings.HEAD_MEAN, settings.HEAD_MAX, *range(model.num_heads)]
    if st.session_state.get(keys.LAYER, settings.LAYER_MEAN) not in layers:
        st.session_state[keys.LAYER] = settings.LAYER_MEAN
    if st.session_state.get(keys.HEAD, settings.HEAD_MEAN) not in heads:
        st.session_state[keys.HEAD] = settings.HEAD_MEAN
    st.session_state.setdefault(keys.LAYER, settings.LAYER_MEAN)
    st.session_state.setdefault(keys.HEAD, settings.HEAD_MEAN)
    prepare(keys.EXPLAIN_PICKS, (settings.OPACITY,), {settings.OPACITY.name: settings.OPACITY_DEFAULT})
    c1, c2, c3 = st.columns(3)
    off = None if attention else "Layer and heads choose among raw attention's maps."
    layer = c1.selectbox("Layer", layers, key=keys.LAYER, format_func=layer_text, disabled=not attention, help=off)
    head = c2.selectbox("Heads", heads, key=keys.HEAD, format_func=head_text, disabled=not attention, help=off)
    opacity = c3.slider(
        settings.OPACITY.label, 0.0, 1.0, step=settings.OPACITY.step, key=keys.OPACITY, help=settings.OPACITY.help
    )
    return layer, head, opacity


def word_picker(words: Sequence[str]) -> int:
    """A row of the caption's words; returns the index of the one to show large. The choice follows the
    word, not its place, when the caption changes (another image or setting), and the first word otherwise."""
    index, chosen = st.session_state.get(keys.WORD, 0), st.session_state.get(keys.WORD_TEXT)
    if chosen is not None and not (0 <= index < len(words) and words[index] == chosen):
        index = words.index(chosen) if chosen in words else 0
    st.session_state[keys.WORD] = index if 0 <= index < len(words) else 0
    st.session_state[keys.WORD_TEXT] = words[st.session_state[keys.WORD]]
    return st.radio(
        "Show one word large",
        range(len(words)),
        key=keys.WORD,
        horizontal=True,
        format_func=lambda i: f"{i + 1}. {markdown_escape(words[i])}",
        on_change=_on_word,
        args=(list(words),),
    )


def _on_word(words: list[str]) -> None:
    st.session_state[keys.WORD_TEXT] = words[st.session_state[keys.WORD]]
