"""Models: two to four captioners side by side on the same image, with the same settings or each one's own."""

import json

import streamlit as st

from captioner.app import model_compare, notes
from captioner.app.ui import decode, frame, model, models_page
from captioner.app.views.colours import token_legend_html
from captioner.app.views.tables import csv_bytes, readable
from captioner.app.views.text import config_label, markdown_escape
from captioner.app.views.tokens import tokens_html

st.title("Compare models")
with st.expander("How to read this", icon=":material/help:"):
    st.markdown(model_compare.HOW_TO_READ)
with frame.page_guard("comparing models"):
    picked = frame.require_image()
    models_page.models_page_state()  # the widgets' starting values (from the URL, or the defaults)
    dropped = models_page.model_list()
    models_page.shared_settings_controls()
    specs, same, shared = models_page.models_page_state()
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
            lm, error = model.load_model(spec)
            if lm is None:
                outcome.error = error
                st.error(error)
                continue
            outcome.info = lm.model.info
            config, fitted = model_compare.config_for(lm.model, shared if same else None)
            st.caption(
                f"{lm.model.info.family} · {model.format_count(lm.model.info.num_parameters)} parameters · {config_label(config)}"
            )
            decoded = decode.decode_configs(lm, picked, [config])
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
            st.plotly_chart(model_compare.prob_figure(result), key=models_page.chart_key(spec))
    with notes_box:
        for note in model.model_notes():
            st.info(note, icon=":material/memory:")

    st.subheader("Side by side")
    table = model_compare.summary_table(outcomes)
    st.table(readable(table), border="horizontal")
    left, right, _ = st.columns([1, 1, 2])
    frame.download("Table (CSV)", csv_bytes(table), "models.csv", where=left)
    record = json.dumps(model_compare.comparison_record(outcomes, picked.name, same), indent=2, default=str)
    frame.download("Everything (JSON)", record, "models.json", where=right)
