"""The Compare page's widgets: its four sliders, the configurations it decodes (greedy, beam, top-k,
top-p and the user's own), the panel that adds and removes the user's own, and the chart's line picker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from captioner.app import notes, settings
from captioner.app.ui import keys
from captioner.app.ui.controls import decoding_controls, decoding_setup, prepare, vocab_size
from captioner.config import DecodingConfig
from captioner.decoding import DecodeResult
from captioner.models.base import CaptionModel
from captioner.app.views.text import config_label, markdown_escape

CHART_LINES = 6  # the token-probability chart shows this many configurations at first (a picker adds more)


def compare_controls(model: CaptionModel) -> dict[str, Any]:
    """The Compare page's four sliders in a row; returns their values."""
    ranges = settings.compare_ranges(vocab_size(model))
    prepare(keys.COMPARE_SLIDERS, ranges, settings.compare_defaults(model.default_decoding, vocab_size(model)))
    for column, r in zip(st.columns(len(ranges)), ranges):
        column.slider(r.label, r.lo, r.hi, step=r.step, key=keys.COMPARE_SLIDERS + r.name)
    return {r.name: st.session_state[keys.COMPARE_SLIDERS + r.name] for r in ranges}


def _strategy_configs(base: DecodingConfig, values: dict[str, Any]) -> list[DecodingConfig]:
    """Greedy, beam, top-k and top-p with the sliders' values."""
    samples, beams = values["samples"], values["beams"]
    return [
        base.with_(strategy="greedy", label="greedy"),
        base.with_(strategy="beam", num_beams=beams, num_return_sequences=1, label=f"beam ({beams})"),
        base.with_(
            strategy="sample", top_k=values["top_k"], top_p=1.0, num_return_sequences=samples, label=f"top-k ({values['top_k']})"
        ),
        base.with_(
            strategy="sample",
            top_k=0,
            top_p=values["top_p"],
            num_return_sequences=samples,
            seed=1,
            label=f"top-p ({values['top_p']:g})",
        ),  # its own seed: the two rows do not share their draws
    ]


def _unique_labels(configs: list[DecodingConfig]) -> list[DecodingConfig]:
    taken: set[str] = set()
    out = []
    for c in configs:
        label, k = c.label, 2
        while label in taken:
            label, k = f"{c.label} ({k})", k + 1
        taken.add(label)
        out.append(c.with_(label=label))
    return out


def compare_configs(model: CaptionModel, values: dict[str, Any]) -> list[DecodingConfig]:
    """Greedy, beam, top-k and top-p with the page's sliders, then the added configurations; names unique."""
    base = model.default_decoding.with_(output_attentions=False, num_alternatives=1, seed=0)
    base = base.with_(max_new_tokens=min(base.max_new_tokens, settings.token_limit(model.max_new_tokens_limit)))
    configs = _strategy_configs(base, values)
    ranges, defaults = decoding_setup(model)
    for added in st.session_state.get(keys.COMPARE_ADDED, []):
        valid = settings.snap_all(added, ranges, defaults)
        config = settings.config_with(base, {**valid, keys.STRATEGY: added.get(keys.STRATEGY, "greedy")})
        n = values["samples"] if config.strategy == "sample" else 1
        configs.append(config.with_(num_return_sequences=n, label=added["label"]))
    return _unique_labels(configs)


def _on_add_configuration() -> None:
    """The Add button: store the form's settings under a unique name and clear the name field."""
    added = st.session_state.setdefault(keys.COMPARE_ADDED, [])
    names = {keys.STRATEGY, *(r.name for r in settings.DECODING_RANGES)}
    values = {name: st.session_state[keys.COMPARE_NEW + name] for name in names if keys.COMPARE_NEW + name in st.session_state}
    typed = str(st.session_state.get(keys.COMPARE_NEW_LABEL, "")).strip()[:60]
    label = typed or f"mine {len(added) + 1}: {config_label(settings.config_with(DecodingConfig(), values))}"
    added.append({**values, "label": label})
    st.session_state[keys.COMPARE_NEW_LABEL] = ""


def _on_remove_configuration(index: int) -> None:
    added = st.session_state.get(keys.COMPARE_ADDED, [])
    if 0 <= index < len(added):
        added.pop(index)


def chart_picker(results: Sequence[DecodeResult]) -> list[DecodeResult]:
    """The results the token-probability chart draws: all when few, else the ones picked (first CHART_LINES)."""
    if len(results) <= CHART_LINES:
        return list(results)
    labels = [config_label(r.config) for r in results]
    if not set(st.session_state.get(keys.COMPARE_CHART, [])) <= set(labels):
        st.session_state.pop(keys.COMPARE_CHART)
    shown = st.multiselect(
        "Lines in the chart",
        labels,
        default=labels[:CHART_LINES],
        key=keys.COMPARE_CHART,
        help="Many lines at once are hard to tell apart: pick the ones to compare.",
    )
    return [r for r, label in zip(results, labels) if label in shown]


def add_configuration_panel(model: CaptionModel) -> None:
    """The expander where users add configurations of their own and remove them. Its label stays the same,
    so it stays open after Add and Remove (a new label would be a new, closed expander)."""
    added = st.session_state.setdefault(keys.COMPARE_ADDED, [])
    with st.expander("Add your own configuration", expanded=bool(added), icon=":material/add_circle:"):
        st.caption(f"{notes.plural(len(added), 'configuration')} added.")
        st.text_input("Name", placeholder="e.g. hot sampling", key=keys.COMPARE_NEW_LABEL, max_chars=60)
        decoding_controls(model, prefix=keys.COMPARE_NEW, columns=3)
        st.button("Add to the comparison", key=keys.COMPARE_ADD, on_click=_on_add_configuration, icon=":material/add:")
        for i, entry in enumerate(added):
            left, right = st.columns([4, 1], vertical_alignment="center")
            left.markdown(markdown_escape(entry["label"]))
            right.button("Remove", key=keys.COMPARE_REMOVE.format(i), on_click=_on_remove_configuration, args=(i,))
