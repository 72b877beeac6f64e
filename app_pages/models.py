"""Models: two to four captioners side by side on the same image, with the same settings or each one's own."""

import json

import streamlit as st

from captioner.app import model_compare, state, views
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
    st.text_area("Models, one per line (2 to 4)", key="mdl.specs", height=110,
                 help="builtin, a captioner.pt or .safetensors file, a model folder, or a Hugging Face hub id: "
                      "what the sidebar's picker takes.")
    st.toggle("Same settings for all", key="mdl.same",
              help="Off: each model decodes with its own default settings.")
    if st.session_state["mdl.same"]:
        strategy_col, *range_cols = st.columns(1 + len(model_compare.SHARED_RANGES))
        strategy_col.selectbox("Strategy", [s for s in STRATEGIES if s in model_compare.SHARED_STRATEGIES],
                               key="mdl.strategy", format_func=lambda s: state.settings.STRATEGY_NAMES[s])
        for column, r in zip(range_cols, model_compare.SHARED_RANGES):
            column.slider(r.label, r.lo, r.hi, step=r.step, key="mdl." + r.name, help=r.help,
                          disabled=st.session_state["mdl.strategy"] not in r.applies_to)
    specs, same, shared = state.models_page_state()
    _, dropped = model_compare.parse_specs(st.session_state["mdl.specs"])
    for note in dropped:
        st.warning(note)
    if len(specs) < model_compare.MIN_MODELS:
        st.info(f"Name at least {model_compare.MIN_MODELS} models to compare, one per line.")
        st.stop()

    notes_box = st.container()
    outcomes = []
    for spec, column in zip(specs, st.columns(len(specs), gap="medium", border=True)):
        with column:
            st.markdown(f"**{views.markdown_escape(spec)}**  \n{model_compare.kind_name(spec)}")
            outcome = model_compare.ModelOutcome(spec)
            outcomes.append(outcome)
            lm, error = state.load_model(spec)
            if lm is None:
                outcome.error = error
                st.error(error)
                continue
            outcome.info = lm.model.info
            st.caption(f"{lm.model.info.family} · {state.format_count(lm.model.info.num_parameters)} parameters")
            config, fitted = model_compare.config_for(lm.model, shared if same else None)
            decoded = state.decode_configs(lm, picked, [config])
            failure = decoded.outcomes[0].error
            if decoded.outcomes[0].result is None:
                outcome.error = failure
                st.error(failure)
                continue
            result = outcome.result = decoded.outcomes[0].result
            caption = result.best
            st.subheader(caption.text or "(empty caption)")
            for note in fitted + views.caption_notes(caption, result.config):
                st.caption(note)
            st.markdown(views.tokens_html(caption, end_token=True), unsafe_allow_html=True)
            with st.container(horizontal=True, gap="small"):
                st.metric("Confidence", f"{caption.confidence:.2f}", width="content")
                st.metric("Log-prob", f"{caption.logprob:.2f}", width="content")
                st.metric("Tokens", views.num_tokens(caption), width="content")
                st.metric("Time", views.milliseconds(model_compare.caption_seconds(result)), width="content")
                if caption.out_of_world is not None:
                    st.metric("Out of world", model_compare.out_of_world_text(result), width="content")
            st.plotly_chart(model_compare.prob_figure(result, "token probabilities"), key=f"mdl.chart.{spec}")
    with notes_box:
        for note in state.model_notes():
            st.info(note, icon=":material/memory:")

    st.subheader("Side by side")
    st.markdown(views.token_legend_html(), unsafe_allow_html=True)
    table = model_compare.summary_table(outcomes)
    st.table(views.readable(table), border="horizontal")
    left, right, _ = st.columns([1, 1, 2])
    left.download_button("Table (CSV)", views.csv_bytes(table), file_name="models.csv", mime="text/csv",
                         on_click="ignore", icon=":material/download:")
    record = json.dumps(model_compare.comparison_record(outcomes, picked.name, same), indent=2, default=str)
    right.download_button("Everything (JSON)", record, file_name="models.json", mime="application/json",
                          on_click="ignore", icon=":material/download:")
