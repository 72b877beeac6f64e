"""Models: two to four captioners side by side on the same image, with the same settings or each one's own."""

import json

import streamlit as st

from captioner.app import model_compare, notes, state
from captioner.app.views.colours import token_legend_html
from captioner.app.views.tables import csv_bytes, readable
from captioner.app.views.text import config_label, markdown_escape
from captioner.app.views.tokens import tokens_html
from captioner.config import STRATEGIES

st.title("Compare models")
with st.expander("How to read this", icon=":material/help:"):
    st.markdown(model_compare.HOW_TO_READ)
with state.page_guard("comparing models"):
    picked = state.selected_image()
    if picked is None:
        st.info("Choose an image in the sidebar: upload one, take a photo, or pick an example.")
        st.stop()
    state.models_page_state()  # the widgets' starting values (from the URL, or the defaults)
    st.text_area(
        "Models, one per line (2 to 4)",
        key="mdl.specs",
        height=110,
        help="builtin, a captioner.pt or .safetensors file, a model folder, or a Hugging Face hub id: "
        "what the sidebar's picker takes.",
    )
    st.toggle("Same settings for all", key="mdl.same", help="Off: each model decodes with its own default settings.")
    if st.session_state["mdl.same"]:
        strategy_col, *range_cols = st.columns(1 + len(model_compare.SHARED_RANGES))
        strategy_col.selectbox(
            "Strategy",
            [s for s in STRATEGIES if s in model_compare.SHARED_STRATEGIES],
            key="mdl.strategy",
            format_func=lambda s: state.settings.STRATEGY_NAMES[s],
        )
        for column, r in zip(range_cols, model_compare.SHARED_RANGES):
            column.slider(
                r.label,
                r.lo,
                r.hi,
                step=r.step,
                key="mdl." + r.name,
                help=r.help,
                disabled=st.session_state["mdl.strategy"] not in r.applies_to,
            )
    specs, same, shared = state.models_page_state()
    _, dropped = model_compare.parse_specs(st.session_state["mdl.specs"])
    for note in dropped:
        st.warning(note)
    if len(specs) < model_compare.MIN_MODELS:
        st.info(f"Name at least {model_compare.MIN_MODELS} models to compare, one per line.")
        st.stop()

    notes_box = st.container()
    st.markdown(token_legend_html(), unsafe_allow_html=True)
    outcomes = []
    for spec, column in zip(specs, st.columns(len(specs), gap="medium", border=True)):
        with column:
            st.markdown(f"**{markdown_escape(model_compare.short_name(spec))}**")
            shown = "" if model_compare.short_name(spec) == spec else f" · `{spec}`"
            st.caption(model_compare.kind_name(spec) + shown)
            outcome = model_compare.ModelOutcome(spec)
            outcomes.append(outcome)
            lm, error = state.load_model(spec)
            if lm is None:
                outcome.error = error
                st.error(error)
                continue
            outcome.info = lm.model.info
            config, fitted = model_compare.config_for(lm.model, shared if same else None)
            st.caption(
                f"{lm.model.info.family} · {state.format_count(lm.model.info.num_parameters)} parameters · {config_label(config)}"
            )
            decoded = state.decode_configs(lm, picked, [config])
            failure = decoded.outcomes[0].error
            if decoded.outcomes[0].result is None:
                outcome.error = failure
                st.error(failure)
                continue
            result = outcome.result = decoded.outcomes[0].result
            caption = result.best
            st.markdown(tokens_html(caption, end_token=True), unsafe_allow_html=True)
            st.markdown(model_compare.figures_line(result))
            for note in fitted + notes.caption_notes(caption, result.config):
                st.caption(note)
            st.plotly_chart(model_compare.prob_figure(result), key=f"mdl.chart.{spec}")
    with notes_box:
        for note in state.model_notes():
            st.info(note, icon=":material/memory:")

    st.subheader("Side by side")
    table = model_compare.summary_table(outcomes)
    st.table(readable(table), border="horizontal")
    left, right, _ = st.columns([1, 1, 2])
    left.download_button(
        "Table (CSV)", csv_bytes(table), file_name="models.csv", mime="text/csv", on_click="ignore", icon=":material/download:"
    )
    record = json.dumps(model_compare.comparison_record(outcomes, picked.name, same), indent=2, default=str)
    right.download_button(
        "Everything (JSON)",
        record,
        file_name="models.json",
        mime="application/json",
        on_click="ignore",
        icon=":material/download:",
    )
