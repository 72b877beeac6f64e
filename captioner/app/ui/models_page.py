"""The Models page's widgets: the models to compare, the "same settings for all" switch and the shared
settings, with their starting values (from the URL, or the defaults)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from captioner.app import model_compare, settings
from captioner.app.ui import keys
from captioner.config import STRATEGIES


def models_page_state() -> tuple[list[str], bool, dict[str, Any]]:
    """The Models page's models, its switch (same settings for all) and the shared settings, from the session."""
    specs_text = st.session_state.setdefault(keys.MODELS_SPECS, "\n".join(model_compare.DEFAULT_SPECS))
    specs, _ = model_compare.parse_specs(specs_text)
    shared = {k: st.session_state.setdefault(keys.MODELS_PAGE + k, v) for k, v in model_compare.SHARED_DEFAULTS.items()}
    return specs, bool(st.session_state.setdefault(keys.MODELS_SAME, True)), shared


def model_list() -> list[str]:
    """The models box; returns its notes on lines that were dropped (duplicates, beyond the fourth)."""
    st.text_area(
        "Models, one per line (2 to 4)",
        key=keys.MODELS_SPECS,
        height=110,
        help="builtin, a captioner.pt or .safetensors file, a model folder, or a Hugging Face hub id: "
        "what the sidebar's picker takes.",
    )
    return model_compare.parse_specs(st.session_state[keys.MODELS_SPECS])[1]


def shared_settings_controls() -> None:
    """The switch, and while it is on the strategy and sliders every model decodes with."""
    st.toggle("Same settings for all", key=keys.MODELS_SAME, help="Off: each model decodes with its own default settings.")
    if not st.session_state[keys.MODELS_SAME]:
        return
    strategy_col, *range_cols = st.columns(1 + len(model_compare.SHARED_RANGES))
    strategy_col.selectbox(
        "Strategy",
        [s for s in STRATEGIES if s in model_compare.SHARED_STRATEGIES],
        key=keys.MODELS_STRATEGY,
        format_func=lambda s: settings.STRATEGY_NAMES[s],
    )
    for column, r in zip(range_cols, model_compare.SHARED_RANGES):
        column.slider(
            r.label,
            r.lo,
            r.hi,
            step=r.step,
            key=keys.MODELS_PAGE + r.name,
            help=r.help,
            disabled=st.session_state[keys.MODELS_STRATEGY] not in r.applies_to,
        )


def chart_key(spec: str) -> str:
    """The key of one model's token-probability chart."""
    return keys.MODELS_CHART.format(spec)
