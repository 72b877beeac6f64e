"""Compare: greedy, beam search, top-k and top-p sampling (and your own settings) on the same image."""

import streamlit as st

from captioner.app import state, views

st.title("Compare decoding strategies")
with state.page_guard("comparing decoding strategies"):
    lm, picked = state.require_model_and_image()
    base = lm.model.default_decoding.with_(output_attentions=False, num_alternatives=1, seed=0)
    for key, value in {"cmp.samples": 5, "cmp.beams": min(max(base.num_beams, 2), 16), "cmp.top_k": 50, "cmp.top_p": 0.9}.items():
        st.session_state.setdefault(key, value)
    c1, c2, c3, c4 = st.columns(4)
    samples = c1.slider("Samples per sampling strategy", 1, 16, key="cmp.samples")
    beams = c2.slider("Beams", 2, 16, key="cmp.beams")
    top_k = c3.slider("Top-k", 1, 200, key="cmp.top_k")
    top_p = c4.slider("Top-p", 0.05, 1.0, step=0.05, key="cmp.top_p")
    configs = [
        base.with_(strategy="greedy", label="greedy"),
        base.with_(strategy="beam", num_beams=beams, num_return_sequences=1, label=f"beam ({beams})"),
        base.with_(strategy="sample", top_k=top_k, top_p=1.0, num_return_sequences=samples, label=f"top-k ({top_k})"),
        base.with_(strategy="sample", top_k=0, top_p=top_p, num_return_sequences=samples, label=f"top-p ({top_p:g})"),
    ]

    added = st.session_state.setdefault("cmp.added", [])
    with st.expander(f"Add your own configuration ({len(added)} added)"):
        with st.form("cmp.add_form", border=False):
            label = st.text_input("Name", placeholder="e.g. hot sampling", key="cmp.new.label")
            extra = state.decoding_controls(lm.model, prefix="cmp.new.", live=False)
            if st.form_submit_button("Add to the comparison"):
                n = samples if extra.strategy == "sample" else 1
                extra = extra.with_(output_attentions=False, num_alternatives=1, num_return_sequences=n,
                                    label=label.strip() or f"mine {len(added) + 1}: {views.config_label(extra)}")
                added.append(extra.validate())
        if added and st.button("Remove the added configurations"):
            added.clear()
            st.rerun()
    configs += added

    results = state.decode_image(lm, picked, configs)
    table = views.comparison_table(results)
    st.subheader("Side by side")
    st.caption(f"All {len(configs)} configurations were decoded together in one batched call; "
               "time is that call's. Score = log-prob / length ** length penalty.")
    st.dataframe(table, hide_index=True)
    st.download_button("Download table (CSV)", views.csv_bytes(table), file_name="comparison.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:")
    st.subheader("Token probabilities")
    st.plotly_chart(views.token_prob_figure(results))
    left, right = st.columns(2)
    with left:
        st.subheader("Samples")
        st.dataframe(views.samples_table(results), hide_index=True)
    with right:
        st.subheader("All beams")
        st.dataframe(views.beams_table(results), hide_index=True)
