"""The decoding widgets: every setting's slider (from the tables of `settings.py`), the seed box, and
keeping widget values in the session while the user visits another page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from captioner.app import settings
from captioner.app.ui import keys
from captioner.config import STRATEGIES, DecodingConfig
from captioner.models.base import CaptionModel
from captioner.app.views.text import markdown_escape, shorten


def prepare(prefix: str, ranges: Sequence[settings.Range], defaults: dict[str, Any]) -> None:
    """Make every stored value valid for its widget (a default where missing, snapped where out of range)."""
    current = {r.name: st.session_state.get(prefix + r.name, defaults[r.name]) for r in ranges}
    for name, value in settings.snap_all(current, tuple(ranges), defaults).items():
        if st.session_state.get(prefix + name) != value or prefix + name not in st.session_state:
            st.session_state[prefix + name] = value
    strategy = prefix + keys.STRATEGY
    if keys.STRATEGY in defaults and st.session_state.get(strategy) not in STRATEGIES:
        st.session_state[strategy] = defaults[keys.STRATEGY]


def vocab_size(model: CaptionModel) -> int:
    """How many tokens the model's tokenizer knows (0 when it cannot say)."""
    try:
        return len(model.tokenizer)
    except TypeError:
        return 0


def decoding_setup(model: CaptionModel) -> tuple[tuple[settings.Range, ...], dict[str, Any]]:
    """The decoding widgets' ranges and starting values for `model`."""
    limit, vocab = model.max_new_tokens_limit, vocab_size(model)
    return (
        settings.decoding_ranges(limit, model.default_decoding, vocab),
        settings.decoding_defaults(model.default_decoding, limit, vocab),
    )


def decoding_values(model: CaptionModel, prefix: str = keys.DECODING) -> dict[str, Any]:
    """The decoding settings stored under `prefix`, valid for `model` (its defaults where none are stored)."""
    ranges, defaults = decoding_setup(model)
    prepare(prefix, ranges, defaults)
    return {k: st.session_state[prefix + k] for k in defaults}


def caption_config(model: CaptionModel) -> DecodingConfig:
    """The Caption page's settings as a DecodingConfig (Explain and Batch use them too)."""
    return settings.config_with(model.default_decoding, decoding_values(model)).with_(num_return_sequences=1)


def default_config(model: CaptionModel) -> DecodingConfig:
    """The settings the Caption page starts at: the model's own (what the CLI uses with no options)."""
    _, defaults = decoding_setup(model)
    return settings.config_with(model.default_decoding, defaults).with_(num_return_sequences=1)


def decoding_controls(model: CaptionModel, prefix: str = keys.DECODING, columns: int = 1) -> dict[str, Any]:
    """Widgets for every decoding setting (in `columns` columns), starting at the model's defaults; the
    settings a strategy ignores are greyed out. Returns the values."""
    ranges, defaults = decoding_setup(model)
    prepare(prefix, ranges, defaults)
    strategy = st.selectbox("Strategy", STRATEGIES, key=prefix + keys.STRATEGY, format_func=settings.STRATEGY_NAMES.get)
    cells = st.columns(columns) if columns > 1 else [st.container()]
    for i, r in enumerate(ranges):
        cell, off = cells[i % len(cells)], strategy not in r.applies_to
        helptext = f"{r.help} This model holds {r.hi}." if r.name == "max_new_tokens" else r.help
        if r.name == "seed":
            with cell:
                seed_input(r, prefix, off)
        else:
            cell.slider(r.label, r.lo, r.hi, step=r.step, key=prefix + r.name, disabled=off, help=helptext)
    return {k: st.session_state[prefix + k] for k in defaults}


def _on_seed_text(r: settings.Range, prefix: str) -> None:
    """The seed box changed: a whole number in range becomes the seed; anything else is refused, said, and undone."""
    typed = str(st.session_state.get(prefix + keys.SEED_TEXT, "")).strip()
    number = settings.whole_number(typed.replace(",", "").replace("_", ""))
    if number is not None and number <= r.hi:
        st.session_state[prefix + r.name] = number
        st.session_state.pop(prefix + keys.SEED_PROBLEM, None)
        return
    st.session_state[prefix + keys.SEED_PROBLEM] = (
        f"“{shorten(typed, 30)}” is not a whole number from 0 to 2^64 − 1 ({int(r.hi):,}): "
        f"the seed stays {st.session_state.get(prefix + r.name, 0)}."
    )


def seed_input(r: settings.Range, prefix: str, disabled: bool) -> None:
    """The seed as a text box: Streamlit's number box reads "1e3" as 1 and "3.7" as 3 without a word, and
    stops at 2^53; seeds go to 2^64 - 1 and must be typed exactly."""
    seed = st.session_state[prefix + r.name]
    if st.session_state.get(prefix + keys.SEED_TEXT) != str(seed):  # a refused text goes back to the seed in use
        st.session_state[prefix + keys.SEED_TEXT] = str(seed)
    st.text_input(
        r.label,
        key=prefix + keys.SEED_TEXT,
        disabled=disabled,
        help=f"{r.help} A whole number, 0 to 2^64 − 1.",
        on_change=_on_seed_text,
        args=(r, prefix),
    )
    problem = st.session_state.pop(prefix + keys.SEED_PROBLEM, None)
    if problem:
        st.error(markdown_escape(problem), icon=":material/error:")


def keep_widget_values() -> None:
    """Re-store page widgets' values so Streamlit does not drop them when another page is shown."""
    for key in list(st.session_state):
        if str(key).startswith(keys.KEPT_PREFIXES):
            st.session_state[key] = st.session_state[key]


def forget(prefixes: Sequence[str]) -> None:
    """Drop every session value whose key starts with one of `prefixes` (its widget starts at its default)."""
    for key in [k for k in st.session_state if str(k).startswith(tuple(prefixes))]:
        del st.session_state[key]
